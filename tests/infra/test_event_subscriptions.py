"""The app's Event Grid subscriptions (infra/modules/automation/events.tf, one for_each over
`event_subscriptions`): each delivers its topic's events, filtered, one at a time to its function, retries for a
day and dead-letters to blob storage with its topic's identity, and waits for the app code to be deployed."""

import pytest
from infra_helpers import MODULES_DIR, for_each_instances, module_locals, resources

AUTOMATION = MODULES_DIR / "automation"
TYPE = "azurerm_eventgrid_system_topic_event_subscription"
BODY = resources(AUTOMATION)[(TYPE, "app")]
SUBSCRIPTIONS, FILTER = for_each_instances(AUTOMATION, BODY)
ENTRIES = module_locals(AUTOMATION)["event_subscriptions"]

# key: (name, topic, event types, subject prefix, function, enabled by)
EXPECTED = {
    "certificates": (
        "certificate-events",
        "${azurerm_eventgrid_system_topic.key_vault.name}",
        ["Microsoft.KeyVault.CertificateNewVersionCreated", "Microsoft.KeyVault.CertificateNearExpiry",
         "Microsoft.KeyVault.CertificateExpired"],
        [],
        "${var.certificate_event_function}",
        "${var.certificate_events_enabled}",
    ),
    "resource_changes": (
        "platform-resource-changes",
        "${one(azurerm_eventgrid_system_topic.subscription[*].name)}",
        ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess"],
        ["${local.resource_group_scope}"],
        "${var.drift_event_functions.resources}",
        "${local.drift_events_enabled}",
    ),
    "cluster_events": (
        "aks-cluster-events",
        "${one(azurerm_eventgrid_system_topic.cluster[*].name)}",
        ["Microsoft.ContainerService.NewKubernetesVersionAvailable", "Microsoft.ContainerService.ClusterSupportEnding",
         "Microsoft.ContainerService.ClusterSupportEnded", "Microsoft.ContainerService.NodePoolRollingFailed"],
        [],
        "${var.drift_event_functions.cluster}",
        "${local.drift_events_enabled}",
    ),
}


def _one(value):
    assert isinstance(value, list) and len(value) == 1, value
    return value[0]


def test_the_subscriptions_are_the_three_the_app_handles():
    assert set(SUBSCRIPTIONS) == set(EXPECTED)


def test_a_subscription_exists_only_once_the_app_code_is_deployed():
    # Event Grid validates the endpoint on creation: the drift ones also wait for the certificate events switch.
    assert FILTER == "enabled"
    assert {key: entry["enabled"] for key, entry in ENTRIES.items()} == {k: e[5] for k, e in EXPECTED.items()}
    locals_ = module_locals(AUTOMATION)
    assert locals_["drift_events_enabled"] == "${var.certificate_events_enabled && var.drift_events_enabled}"


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_subscription_filters_its_topics_events(key):
    name, topic, event_types, prefixes, _, _ = EXPECTED[key]
    body = SUBSCRIPTIONS[key]
    assert (body["name"], body["system_topic"]) == (name, topic)
    assert body["event_delivery_schema"] == "EventGridSchema"
    assert body["included_event_types"] == event_types
    subject_filter = _one(body["dynamic"])["subject_filter"]
    assert subject_filter["for_each"] == prefixes
    assert subject_filter["content"] == [{"subject_begins_with": "${subject_filter.value}"}]


def test_only_resource_changes_are_limited_to_the_platform_resource_group():
    scope = module_locals(AUTOMATION)["resource_group_scope"]
    assert scope == '${join("/", slice(split("/", var.cluster_id), 0, 5))}'  # /subscriptions/<id>/resourceGroups/<rg>


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_subscription_delivers_one_event_at_a_time_to_its_function(key):
    endpoint = _one(SUBSCRIPTIONS[key]["azure_function_endpoint"])
    assert endpoint == {
        "function_id": f"${{azurerm_function_app_flex_consumption.this.id}}/functions/{EXPECTED[key][4]}",
        "max_events_per_batch": 1,
        "preferred_batch_size_in_kilobytes": 64,
    }


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_subscription_retries_for_a_day_and_dead_letters_with_its_topics_identity(key):
    body = SUBSCRIPTIONS[key]
    assert _one(body["retry_policy"]) == {"max_delivery_attempts": 30, "event_time_to_live": 1440}
    assert _one(body["dead_letter_identity"]) == {"type": "SystemAssigned"}
    assert _one(body["storage_blob_dead_letter_destination"]) == {
        "storage_account_id": "${var.storage.id}",
        "storage_blob_container_name": "${var.storage.deadletter_container}",
    }
    # Dead-lettering needs the topic identity's role on the container before Event Grid uses it.
    assert set(body["depends_on"]) == {"${azurerm_role_assignment.deadletter}",
                                       "${azurerm_role_assignment.deadletter_drift}"}


def test_every_topic_identity_may_write_dead_letters_to_the_container():
    automation = resources(AUTOMATION)
    container = "${var.storage.id}/blobServices/default/containers/${var.storage.deadletter_container}"
    key_vault = automation[("azurerm_role_assignment", "deadletter")]
    drift = automation[("azurerm_role_assignment", "deadletter_drift")]
    for grant in (key_vault, drift):
        assert grant["scope"] == container and grant["role_definition_name"] == "Storage Blob Data Contributor"
    assert key_vault["principal_id"] == "${azurerm_eventgrid_system_topic.key_vault.identity[0].principal_id}"
    assert "azurerm_eventgrid_system_topic.subscription[0].identity[0].principal_id" in drift["for_each"]
    assert "azurerm_eventgrid_system_topic.cluster[0].identity[0].principal_id" in drift["for_each"]
