"""The one form validator every channel uses: required, types, options, conditions."""

import pytest
from pydantic import ValidationError

from desk_contracts.catalog import (
    FieldErrors,
    ServiceDefinition,
    applicable_fields,
    validate_fields,
)


def service(**kw) -> ServiceDefinition:
    base = {
        "id": "legal-document",
        "name": {"en": "Legal document", "ru": "Юридический документ"},
        "target": {"board_id": "b", "column_id": "c", "lane_id": "l"},
        "fields": [
            {"key": "document", "label": {"en": "Document"}, "type": "select", "required": True,
             "options": [{"value": "contract", "label": {"en": "Contract"}},
                         {"value": "nda", "label": {"en": "NDA"}},
                         {"value": "poa", "label": {"en": "Power of attorney"}}]},
            {"key": "counterparty", "label": {"en": "Counterparty"}, "required": True,
             "condition": {"field": "document", "in": ["contract", "nda"]}},
            {"key": "pages", "label": {"en": "Pages"}, "type": "number"},
            {"key": "until", "label": {"en": "Until"}, "type": "date"},
            {"key": "urgent", "label": {"en": "Urgent"}, "type": "checkbox"},
            {"key": "copies", "label": {"en": "Copies"}, "type": "multiselect",
             "options": [{"value": "paper", "label": {"en": "Paper"}},
                         {"value": "pdf", "label": {"en": "PDF"}}]},
        ],
    }
    return ServiceDefinition.model_validate(base | kw)


def test_valid_answers_are_cleaned_and_typed():
    cleaned = validate_fields(service(), {
        "document": "contract", "counterparty": "  ACME Ltd ", "pages": "12",
        "until": "2026-12-31", "urgent": "on", "copies": ["pdf"]})
    assert cleaned == {"document": "contract", "counterparty": "ACME Ltd", "pages": 12,
                       "until": "2026-12-31", "urgent": True, "copies": ["pdf"]}


def test_conditional_field_is_required_only_when_its_condition_holds():
    with pytest.raises(FieldErrors) as err:
        validate_fields(service(), {"document": "nda"})
    assert err.value.errors == {"counterparty": "is required"}
    # hidden by the condition: neither required nor kept
    assert validate_fields(service(), {"document": "poa", "counterparty": "stale"}) == {
        "document": "poa"}


def test_each_invalid_field_gets_its_own_message():
    with pytest.raises(FieldErrors) as err:
        validate_fields(service(), {"document": "will", "pages": "many", "until": "tomorrow",
                                    "copies": ["fax"], "typo": "x"})
    assert err.value.errors == {
        "document": "must be one of: contract, nda, poa",
        "pages": "must be a number",
        "until": "must be a date (YYYY-MM-DD)",
        "copies": "must be among: paper, pdf",
        "typo": "is not a field of this service",
    }


def test_applicable_fields_follow_answers():
    keys = [f.key for f in applicable_fields(service(), {"document": "contract"})]
    assert "counterparty" in keys
    keys = [f.key for f in applicable_fields(service(), {"document": "poa"})]
    assert "counterparty" not in keys


def test_definition_errors_are_refused_with_a_reason():
    with pytest.raises(ValidationError, match="not a field defined before it"):
        service(fields=[{"key": "a", "label": {"en": "A"},
                         "condition": {"field": "b", "in": ["x"]}},
                        {"key": "b", "label": {"en": "B"}}])
    with pytest.raises(ValidationError, match="needs options"):
        service(fields=[{"key": "a", "label": {"en": "A"}, "type": "select"}])
    with pytest.raises(ValidationError, match="not options"):
        service(fields=[{"key": "a", "label": {"en": "A"}, "type": "select",
                         "options": [{"value": "x", "label": {"en": "X"}}]},
                        {"key": "b", "label": {"en": "B"}, "condition": {"field": "a",
                                                                         "in": ["y"]}}])


def test_status_names_are_localised():
    s = service(language="ru")
    assert s.status_name("queued") == "В очереди"
    assert s.status_name("done", "en") == "Done"
