"""A Trigger of a Kafka Broker: its consumer group instead of a Subscription.

The Trigger reconciler (`controller.trigger`) runs the same steps for both broker classes
(BrokerReady, SubscriberResolved, DeadLetterSinkResolved, DependencyReady, the filter and
delivery rules); only step 4 differs. For a Kafka Broker it is the consumer group
`knative-trigger-<ns>-<name>`: once the Broker and the destinations are ready, the group's
start offsets are committed at the topic's end for partitions it has none for (Knative's
InitOffsets: the dispatcher's members, which join later, start where the Trigger became
Ready, so nothing sent after Ready is missed and nothing from before is replayed), then
SubscriptionReady is True. The dispatcher (`dispatcher.kafkabroker`) runs the group.
"""

from __future__ import annotations

from controller import context
from controller.framework import lifecycle
from controller.kafkabroker import reconciler
from kevents import errors, kafka, kafkabrokers, kubeapi

SUBSCRIPTION_READY = "SubscriptionReady"


async def consumer_group(
    api: kubeapi.KubeApi,
    options: context.Options,
    trigger: kubeapi.Json,
    broker: kubeapi.Json,
    ready: bool,
    state: lifecycle.State,
) -> None:
    meta = trigger["metadata"]
    group = kafkabrokers.group_id(meta["namespace"], meta["name"])
    published = kafkabrokers.published(broker)
    if not ready or published is None:
        if _was_ready(trigger):
            # The group exists and its offsets are committed: a Broker that is not Ready for
            # a moment (its data plane pod restarting) does not stop the Trigger's delivery.
            state.mark_true(SUBSCRIPTION_READY, "ConsumerGroupReady", f"consumer group {group}")
            return
        state.mark_unknown(
            SUBSCRIPTION_READY, "ConsumerGroupNotConfigured",
            f"consumer group {group} waits for the Broker and the Trigger's destinations",
        )  # fmt: skip
        return
    try:
        _, client, _ = await reconciler.broker_config(api, broker, options.system_namespace)
    except reconciler.ConfigProblem as exc:
        state.mark_false(SUBSCRIPTION_READY, exc.reason, exc.message)
        state.retry_later(exc.message)
        return
    try:
        await kafka.init_offsets(
            client, group, [published.topic], "latest", request_timeout=options.kafka_timeout
        )
    except errors.KafkaError as exc:
        message = f"consumer group {group}: {exc}"
        state.mark_false(SUBSCRIPTION_READY, exc.reason, message)
        state.retry_later(message)
        return
    state.mark_true(
        SUBSCRIPTION_READY, "ConsumerGroupReady", f"consumer group {group} on {published.topic}"
    )


def _was_ready(trigger: kubeapi.Json) -> bool:
    for cond in (trigger.get("status") or {}).get("conditions") or []:
        if cond.get("type") == SUBSCRIPTION_READY:
            return bool(cond.get("status") == "True")
    return False
