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
    assert settings.from_env({"DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES": "yes"}).allow_local_repositories is False
