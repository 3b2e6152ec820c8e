"""The deployable field metadata matches what the sync writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from connectors.salesforce.sync import DEFAULT_FIELDS
from connectors.salesforce.text import case_text

FIELDS = (
    Path(__file__).resolve().parents[3]
    / "connectors/salesforce/metadata/force-app/main/default/objects/Case/fields"
)
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


def test_every_written_field_is_deployable() -> None:
    types = {}
    for path in FIELDS.glob("*.field-meta.xml"):
        root = ET.parse(path).getroot()
        name = root.find("m:fullName", NS).text
        assert path.name == f"{name}.field-meta.xml"
        types[name] = root.find("m:type", NS).text
    assert set(types) == set(DEFAULT_FIELDS.values())
    assert types["Sentiment__c"] == "Picklist"
    assert types["Sentiment_Scored_At__c"] == "DateTime"
    picklist = ET.parse(FIELDS / "Sentiment__c.field-meta.xml").getroot()
    values = [v.text for v in picklist.iterfind(".//m:value/m:fullName", NS)]
    assert values == ["Negative", "Neutral", "Positive", "Mixed"]


def test_case_text_trims_email_quoting_signatures_and_disclaimers() -> None:
    body = (
        "The export keeps failing and I am losing a day of work.\r\n"
        "> earlier: please try again\r\n"
        "--\r\nJane Doe\r\nAcme Corp\r\n"
    )
    assert case_text(["Export broken", body]) == (
        "Export broken\nThe export keeps failing and I am losing a day of work."
    )
    reply = (
        "Thanks, fixed!\nOn Mon, 1 Dec 2026 at 10:00, Support <s@x.io> wrote:\n> old"
    )
    assert case_text([None, reply]) == "Thanks, fixed!"
    legal = "Great help.\nThis email and any attachments are confidential and meant"
    assert case_text(["", legal]) == "Great help."


def test_the_score_range_is_a_validation_rule() -> None:
    rule = ET.parse(
        FIELDS.parent / "validationRules/Sentiment_Score_Range.validationRule-meta.xml"
    ).getroot()
    formula = rule.find("m:errorConditionFormula", NS).text
    assert rule.find("m:active", NS).text == "true"
    assert "Sentiment_Score__c < -1" in formula and "Sentiment_Score__c > 1" in formula
    assert rule.find("m:errorDisplayField", NS).text == "Sentiment_Score__c"
