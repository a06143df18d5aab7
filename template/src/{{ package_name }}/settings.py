"""The service's settings: add its own fields here, typed; secrets as SecretStr.

A secret that production must have is declared with `production_secret()`:

    signing_key: SecretStr | None = production_secret("Key that signs webhooks.")
"""

from functools import lru_cache

from .platform.settings import PlatformSettings


class Settings(PlatformSettings):
    """Platform settings plus the service's own."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
