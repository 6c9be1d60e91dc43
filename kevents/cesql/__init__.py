"""CloudEvents SQL (CESQL) v1: a compiler and evaluator for filter expressions.

Modules, from text to result:

    grammar     lark grammar and parse()               text -> parse tree
    tree        AST node types and build()             parse tree -> AST (+ name/literal checks)
    values      types, zero values, casting            Boolean / 32-bit Integer / String
    like        LIKE pattern matchers
    functions   built-in functions and the registry
    compiler    AST -> Python closures
    expression  compile() -> Expression.evaluate() -> Result(value, errors)
    errors      ErrorKind, Error, ParseError
"""
