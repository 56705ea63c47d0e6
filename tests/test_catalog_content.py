"""Demo tips: present in both languages, proper Bambara orthography, readable on a phone."""

from __future__ import annotations

import pytest

from gateway.data.seed import load_json
from messages import to_ussd

TIPS = load_json("tips.json")
CROPS = {c["code"] for c in load_json("reference.json")["crops"]}


@pytest.mark.parametrize("tip", TIPS, ids=[t["title_fr"] for t in TIPS])
def test_tip_is_complete(tip):
    assert tip["category"] in ("gap", "postharvest", "nutrition")
    assert tip["crop"] is None or tip["crop"] in CROPS
    for lang in ("fr", "bm"):
        assert 0 < len(to_ussd(tip[f"title_{lang}"])) <= 30
        assert len(tip[f"text_{lang}"]) >= 60


def test_enough_tips_in_each_category():
    by_category = {}
    for tip in TIPS:
        by_category[tip["category"]] = by_category.get(tip["category"], 0) + 1
    assert len(TIPS) >= 20 and min(by_category.values()) >= 3
