import pyarrow as pa

from sf_platform.core.sources.categories import (
    OBJECTS365_NAME_FIXES,
    fix_category_name,
    fix_category_names,
)


def test_known_misspellings_are_fixed():
    assert fix_category_name("Dinning Table") == "Dining Table"
    assert fix_category_name("Moniter/TV") == "Monitor/TV"
    assert fix_category_name("Bakset") == "Basket"
    assert fix_category_name("Mushroon") == "Mushroom"
    assert fix_category_name("Campel") == "Camel"
    assert fix_category_name("Buttefly") == "Butterfly"
    assert fix_category_name("Hotair ballon") == "Hot-air balloon"


def test_other_names_pass_through_stripped():
    assert fix_category_name("  Person ") == "Person"
    assert fix_category_name(None) is None
    assert fix_category_names(pa.array(["Campel", "Chair", None])).to_pylist() == [
        "Camel",
        "Chair",
        None,
    ]


def test_no_fix_maps_to_another_misspelling():
    assert not set(OBJECTS365_NAME_FIXES.values()) & set(OBJECTS365_NAME_FIXES)
