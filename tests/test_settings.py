"""Both processes' settings, from the environment: the switches an operator sets by hand."""

from __future__ import annotations

import pytest

from controller.settings import Settings as ControllerSettings
from extension.settings import Settings as ExtensionSettings


@pytest.mark.parametrize("settings", [ControllerSettings, ExtensionSettings])
def test_local_repositories_and_a_shared_port_are_off_unless_switched_on(settings: type) -> None:
    default = settings.from_env({})
    assert (default.allow_local_repositories, default.reuse_port) == (False, False)
    on = settings.from_env({"DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES": "true", "DRIFTGUARD_REUSE_PORT": " True "})
    assert (on.allow_local_repositories, on.reuse_port) == (True, True)
    assert settings.from_env({"DRIFTGUARD_REUSE_PORT": ""}).reuse_port is False


@pytest.mark.parametrize("settings", [ControllerSettings, ExtensionSettings])
@pytest.mark.parametrize("name", ["DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES", "DRIFTGUARD_REUSE_PORT"])
def test_a_switch_that_is_neither_true_nor_false_is_refused_by_name(settings: type, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be true or false, not 'yes'"):
        settings.from_env({name: "yes"})


def test_leader_election_is_on_unless_switched_off() -> None:
    assert ControllerSettings.from_env({}).leader_election is True
    assert ControllerSettings.from_env({"DRIFTGUARD_LEADER_ELECTION": "False"}).leader_election is False
    with pytest.raises(ValueError, match="DRIFTGUARD_LEADER_ELECTION must be true or false"):
        ControllerSettings.from_env({"DRIFTGUARD_LEADER_ELECTION": "0"})
