"""Channel: the generic channel, backed by a concrete channel made from its channelTemplate."""
