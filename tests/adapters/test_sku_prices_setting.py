"""SKU_PRICES: optional `PART=PRICE,...` for the report page's cost columns."""

from __future__ import annotations

import pytest

from shared.platform.settings import Settings, SettingsError
from tests.adapters.test_settings import REQUIRED


def test_unset_means_no_prices() -> None:
    assert Settings.from_env(REQUIRED).sku_prices == {}


def test_parts_and_prices_are_read() -> None:
    settings = Settings.from_env(REQUIRED | {"SKU_PRICES": " SPE_E3=36, EMS = 10.6 ,"})
    assert settings.sku_prices == {"SPE_E3": 36.0, "EMS": 10.6}


def test_prices_take_the_separators_of_every_list_setting() -> None:
    settings = Settings.from_env(REQUIRED | {"SKU_PRICES": "SPE_E3=36; EMS = 10.6\nVISIOCLIENT=15"})
    assert settings.sku_prices == {"SPE_E3": 36.0, "EMS": 10.6, "VISIOCLIENT": 15.0}


@pytest.mark.parametrize("text", ["SPE_E3", "SPE_E3=-1", "=5", "EMS=ten", "EMS=inf", "EMS=nan"])
def test_a_bad_entry_is_named(text: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(REQUIRED | {"SKU_PRICES": text})
    assert "SKU_PRICES" in error.value.invalid
    assert "PRODUCT=PRICE" in error.value.invalid["SKU_PRICES"]
