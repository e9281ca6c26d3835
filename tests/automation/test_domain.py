"""Automation's pure rules, table-driven: which category a request falls in and what it
routes, which rules an event runs (trigger, conditions) and why others are skipped, and
what a rule, category or template must name to be kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from boards.automation import domain
from boards.automation.domain import AutomationInvalid, Category, Happening
from desk_contracts.catalog import ServiceDefinition

SERVICE = ServiceDefinition.model_validate({
    "id": "it", "name": {"en": "IT"},
    "target": {"board_id": "support", "column_id": "new", "lane_id": "main"},
    "fields": [
        {"key": "kind", "label": {"en": "Kind"}, "type": "select", "options": [
            {"value": "access", "label": {"en": "Access"}},
            {"value": "question", "label": {"en": "Question"}}]},
        {"key": "system", "label": {"en": "System"}, "type": "select",
         "condition": {"field": "kind", "in": ["access"]}, "options": [
             {"value": "vpn", "label": {"en": "VPN"}}, {"value": "crm", "label": {"en": "CRM"}}]},
        {"key": "role", "label": {"en": "Role"}, "type": "select",
         "condition": {"field": "system", "in": ["crm"]}, "options": [
             {"value": "read", "label": {"en": "Read"}}, {"value": "admin", "label": {"en": "Admin"}}]},
        {"key": "note", "label": {"en": "Note"}},
    ]})

BOARDS = {"support": {"_id": "support",
                      "columns": [{"id": "new", "category": "queued"},
                                  {"id": "doing", "category": "in_progress"},
                                  {"id": "done", "category": "done"}],
                      "lanes": [{"id": "main"}, {"id": "urgent"}],
                      "card_types": [{"id": "request", "customer_request": True},
                                     {"id": "access", "customer_request": True},
                                     {"id": "task"}],
                      "priorities": [{"id": "p1", "level": "critical"}]},
          "hr": {"_id": "hr", "columns": [{"id": "todo", "category": "queued"}],
                 "lanes": [{"id": "main"}], "card_types": [{"id": "task"}]}}

CATEGORIES = [
    Category("access", "it", "kind", "access", "Access", None,
             {"priority": "high", "sla_policy": "access-40m", "card_type": "access"}),
    Category("access-crm", "it", "system", "crm", "CRM", "access",
             {"lane_id": "urgent", "assignment": {"kind": "fixed", "agents": ["crm-admin"]}}),
    Category("access-crm-admin", "it", "role", "admin", "Admin rights", "access-crm",
             {"priority": "critical"}),
    Category("question", "it", "kind", "question", "Question", None, {"priority": "medium"}),
    Category("other-service", "hr", "kind", "access", "HR access", None, {"priority": "low"}),
]


@pytest.mark.parametrize(("answers", "category", "path", "priority", "lane"), [
    ({"kind": "access"}, "access", ("access",), "high", None),
    ({"kind": "access", "system": "crm"}, "access-crm", ("access", "access-crm"), "high",
     "urgent"),
    ({"kind": "access", "system": "crm", "role": "admin"}, "access-crm-admin",
     ("access", "access-crm", "access-crm-admin"), "critical", "urgent"),
    ({"kind": "access", "system": "vpn"}, "access", ("access",), "high", None),
    ({"kind": "question", "system": "crm"}, "question", ("question",), "medium", None),
    ({"kind": ["question"]}, "question", ("question",), "medium", None),
    ({}, None, None, None, None),
    ({"system": "crm"}, None, None, None, None),  # no top-level answer: no category
])
def test_the_deepest_matching_category_wins_and_inherits_its_parents(
        answers, category, path, priority, lane):
    routing = domain.match_category(CATEGORIES, "it", answers)
    if category is None:
        assert routing is None
        assert domain.routed_service(SERVICE, routing) is SERVICE
        return
    assert (routing.category_id, routing.path) == (category, path)
    assert routing.settings.get("priority") == priority
    assert routing.settings.get("lane_id") == lane
    routed = domain.routed_service(SERVICE, routing)
    assert routed.default_priority == priority
    assert routed.sla_policy == ("access-40m" if category.startswith("access") else None)
    assert routed.target.lane_id == (lane or "main")
    assert routed.target.board_id == "support"


def test_a_category_assignment_replaces_the_services():
    routed = domain.routed_service(SERVICE, domain.match_category(
        CATEGORIES, "it", {"kind": "access", "system": "crm"}))
    assert (routed.assignment.kind, routed.assignment.agents) == ("fixed", ("crm-admin",))
    assert routed.card_type == "access"


CARD = {"_id": "c1", "service_id": "it", "category_path": ["access", "access-crm"],
        "type": "access", "priority": "high", "priority_key": "high", "lane_id": "main",
        "column_id": "new", "board_id": "support", "kind": "request",
        "requester": {"email": "ann@hopper.example", "organisation": "Hopper"},
        "labels": [{"name": "vip", "color": "#000000"}], "assignee_id": None,
        "fields": {"kind": "access", "system": "crm", "urgent": True}}


@pytest.mark.parametrize(("condition", "holds"), [
    ({"attribute": "service", "values": ["it"]}, True),
    ({"attribute": "service", "values": ["hr"]}, False),
    ({"attribute": "category", "values": ["access"]}, True),  # an ancestor counts
    ({"attribute": "category", "values": ["access-crm-admin"]}, False),
    ({"attribute": "category", "op": "not_in", "values": ["question"]}, True),
    ({"attribute": "type", "values": ["access"]}, True),
    ({"attribute": "priority", "values": ["high", "critical"]}, True),
    ({"attribute": "priority", "op": "not_in", "values": ["high"]}, False),
    ({"attribute": "lane", "values": ["urgent"]}, False),
    ({"attribute": "organisation", "values": ["HOPPER"]}, True),  # case does not matter
    ({"attribute": "label", "values": ["vip"]}, True),
    ({"attribute": "label", "op": "not_in", "values": ["vip"]}, False),
    ({"attribute": "assignee", "op": "not_set"}, True),
    ({"attribute": "assignee", "op": "is_set"}, False),
    ({"attribute": "field:system", "values": ["crm"]}, True),
    ({"attribute": "field:urgent", "values": ["true"]}, True),
    ({"attribute": "field:missing", "op": "is_set"}, False),
])
def test_conditions_over_the_cards_attributes(condition, holds):
    assert domain.condition_holds(condition, domain.card_facts(CARD)) is holds


def test_organisation_falls_back_to_the_requesters_mail_domain():
    card = {**CARD, "requester": {"email": "bob@ati.su"}}
    assert domain.card_facts(card)["organisation"] == ["ati.su"]


def _rule(rule_id, trigger, conditions=(), actions=({"type": "note", "text": "x"},), **kw):
    return {"_id": rule_id, "name": rule_id, "trigger": trigger, "conditions": list(conditions),
            "actions": list(actions), "version": 1, **kw}


RULES = [
    _rule("on-create", {"type": "card_created"}),
    _rule("on-create-access", {"type": "card_created"},
          [{"attribute": "category", "values": ["access"]}]),
    _rule("on-create-question", {"type": "card_created"},
          [{"attribute": "category", "values": ["question"]}]),
    _rule("to-done", {"type": "card_moved", "to_column": "done"}),
    _rule("from-new", {"type": "card_moved", "from_column": "new"}),
    _rule("any-done", {"type": "card_moved", "to_category": "done"}),
    _rule("prio", {"type": "field_changed", "field": "priority"}),
    _rule("any-field", {"type": "field_changed"}),
    _rule("reply", {"type": "customer_replied"}),
    _rule("breach-resolve", {"type": "sla_breached", "target": "resolution"}),
    _rule("warn", {"type": "sla_warning"}),
    _rule("assigned", {"type": "assigned"}),
    _rule("off", {"type": "card_created"}, active=False),
    _rule("other-board", {"type": "card_created"}, board_id="hr"),
]


@pytest.mark.parametrize(("happening", "ran", "skipped"), [
    (Happening("card_created", "c1"), ["on-create", "on-create-access"],
     ["on-create-question"]),
    (Happening("card_moved", "c1", from_column="new", to_column="done", to_category="done"),
     ["any-done", "from-new", "to-done"], []),
    (Happening("card_moved", "c1", from_column="doing", to_column="new",
               to_category="queued"), [], []),
    (Happening("field_changed", "c1", changed=("priority", "priority_key")),
     ["any-field", "prio"], []),
    (Happening("field_changed", "c1", changed=("title",)), ["any-field"], []),
    (Happening("customer_replied", "c1"), ["reply"], []),
    (Happening("sla_breached", "c1", sla_target="first_response"), [], []),
    (Happening("sla_breached", "c1", sla_target="resolution"), ["breach-resolve"], []),
    (Happening("sla_warning", "c1", sla_target="resolution"), ["warn"], []),
    (Happening("assigned", "c1", assignee_id="ann"), ["assigned"], []),
])
def test_which_rules_an_event_runs_and_which_it_skips(happening, ran, skipped):
    decisions = domain.evaluate(RULES, happening, CARD)
    assert sorted(d.rule_id for d in decisions if d.run) == ran
    assert sorted(d.rule_id for d in decisions if not d.run) == skipped
    for d in decisions:
        assert d.run or d.reason.startswith("condition not met: category in [question]")


def test_rules_run_in_their_order_then_by_id():
    rules = [_rule("b", {"type": "card_created"}, order=1), _rule("a", {"type": "card_created"},
                                                                   order=2),
             _rule("c", {"type": "card_created"}, order=1)]
    assert [d.rule_id for d in domain.evaluate(rules, Happening("card_created", "c1"), CARD)] \
        == ["b", "c", "a"]


@pytest.mark.parametrize(("current", "action", "after"), [
    ([], {"type": "add_labels", "labels": ["vip"]}, ["vip"]),
    ([{"name": "vip", "color": "#111111"}], {"type": "add_labels", "labels": ["vip", "new"]},
     ["vip", "new"]),
    ([{"name": "vip", "color": "#111111"}, {"name": "x", "color": "#111111"}],
     {"type": "remove_labels", "labels": ["vip"]}, ["x"]),
])
def test_label_actions(current, action, after):
    assert [x["name"] for x in domain.label_change(current, action)] == after


def test_a_checklist_template_adds_its_items_once_and_progress_counts_done():
    template = {"items": ["Check market", "Estimate cost"]}
    first = domain.checklist_after([], template)
    assert first == [{"text": "Check market", "done": False},
                     {"text": "Estimate cost", "done": False}]
    assert domain.checklist_after(first, template) is None
    first[0]["done"] = True
    assert domain.checklist_progress(first) == (1, 2)
    assert domain.due_date_after(3, date(2026, 12, 30)) == "2027-01-02"


def _valid_rule(**kw):
    return {"id": "r1", "name": "Access is urgent", "board_id": "support",
            "trigger": {"type": "card_created"},
            "conditions": [{"attribute": "category", "values": ["access"]}],
            "actions": [{"type": "set_priority", "value": "high"}]} | kw


def _check(doc):
    return domain.validate_rule(doc, boards=BOARDS, services={"it"}, categories={"access"},
                                checklists={"idea"}, agents={"ann"}, canned={"hello"})


@pytest.mark.parametrize(("change", "errors"), [
    ({"id": "Bad Id"}, {"id"}),
    ({"name": " "}, {"name"}),
    ({"board_id": "nowhere"}, {"board_id"}),
    ({"trigger": {"type": "when_ever"}}, {"trigger.type"}),
    ({"trigger": {"type": "card_moved", "to_column": "void"}}, {"trigger.to_column"}),
    ({"trigger": {"type": "card_created", "to_column": "done"}}, {"trigger.to_column"}),
    ({"conditions": [{"attribute": "colour", "values": ["red"]}]}, {"conditions[0].attribute"}),
    ({"conditions": [{"attribute": "service", "values": ["nope"]}]}, {"conditions[0].values"}),
    ({"conditions": [{"attribute": "category", "values": []}]}, {"conditions[0].values"}),
    ({"conditions": [{"attribute": "type", "op": "like", "values": ["x"]}]},
     {"conditions[0].op"}),
    ({"actions": []}, {"actions"}),
    ({"actions": [{"type": "explode"}]}, {"actions[0].type"}),
    ({"actions": [{"type": "set_column", "column_id": "void"}]}, {"actions[0].column_id"}),
    ({"actions": [{"type": "set_lane", "lane_id": "void"}]}, {"actions[0].lane_id"}),
    ({"actions": [{"type": "set_priority", "value": "urgent"}]}, {"actions[0].value"}),
    ({"actions": [{"type": "set_type", "value": "bug"}]}, {"actions[0].value"}),
    ({"actions": [{"type": "set_due_date", "days": -1}]}, {"actions[0].days"}),
    ({"actions": [{"type": "add_checklist", "checklist_template_id": "gone"}]},
     {"actions[0].checklist_template_id"}),
    ({"actions": [{"type": "set_assignee", "assignment": {"kind": "fixed",
                                                          "agents": ["bob"]}}]},
     {"actions[0].assignment"}),
    ({"actions": [{"type": "reply"}]}, {"actions[0].text"}),
    ({"actions": [{"type": "reply", "canned_response_id": "nope"}]},
     {"actions[0].canned_response_id"}),
    ({"actions": [{"type": "notify", "agents": ["ann", "zed"]}]}, {"actions[0].agents"}),
    ({"actions": [{"type": "create_children", "children": [
        {"board_id": "void", "title": ""}]}]},
     {"actions[0].children[0].board_id", "actions[0].children[0].title"}),
    ({"actions": [{"type": "set_priority", "value": "high"}, {"type": "set_lane"}]},
     {"actions[1].lane_id"}),
    ({"actions": [{"type": "start_template", "request_template_id": "nope"}]},
     {"actions[0].request_template_id"}),
])
def test_a_rule_is_refused_naming_each_wrong_field(change, errors):
    with pytest.raises(AutomationInvalid) as caught:
        _check(_valid_rule(**change))
    assert set(caught.value.errors) == errors


def test_a_valid_rule_is_kept_as_given():
    kept = _check(_valid_rule(actions=[
        {"type": "set_priority", "value": "p1"}, {"type": "reply", "canned_response_id": "hello"},
        {"type": "create_children", "children": [{"board_id": "hr", "title": "Onboard {title}",
                                                  "due_in_days": 2}]}]))
    assert kept["_id"] == "r1" and kept["active"] is True
    assert [a["type"] for a in kept["actions"]] == ["set_priority", "reply", "create_children"]


@pytest.mark.parametrize(("doc", "parent", "level", "errors"), [
    ({"id": "a", "service_id": "it", "field": "kind", "value": "access"}, None, 0, set()),
    ({"id": "a", "service_id": "it", "field": "kind", "value": "nope"}, None, 0, {"value"}),
    ({"id": "a", "service_id": "it", "field": "note", "value": "x"}, None, 0, {"field"}),
    ({"id": "a", "service_id": "it", "field": "system", "value": "vpn"}, None, 0, {"field"}),
    ({"id": "b", "service_id": "it", "field": "system", "value": "vpn", "parent_id": "a"},
     {"_id": "a", "service_id": "it", "field": "kind", "value": "access"}, 1, set()),
    # the form shows `system` only under kind=access, not under kind=question
    ({"id": "b", "service_id": "it", "field": "system", "value": "vpn", "parent_id": "q"},
     {"_id": "q", "service_id": "it", "field": "kind", "value": "question"}, 1, {"field"}),
    ({"id": "e", "service_id": "it", "field": "role", "value": "read", "parent_id": "d"},
     {"_id": "d", "service_id": "it", "field": "system", "value": "crm"}, 4, {"parent_id"}),
    ({"id": "a", "service_id": "it", "field": "kind", "value": "access",
      "board_id": "support", "column_id": "void", "lane_id": "main"}, None, 0, {"column_id"}),
    ({"id": "a", "service_id": "it", "field": "kind", "value": "access", "board_id": "hr"},
     None, 0, {"column_id", "lane_id"}),
    ({"id": "a", "service_id": "it", "field": "kind", "value": "access", "priority": "asap",
      "language": "de", "card_type": "bug"}, None, 0, {"priority", "language", "card_type"}),
    ({"id": "a", "service_id": "nope", "field": "kind", "value": "access"}, None, 0,
     {"service_id"}),
])
def test_a_category_answers_the_forms_dependent_selects(doc, parent, level, errors):
    service = SERVICE if doc["service_id"] == "it" else None
    if not errors:
        kept = domain.validate_category(doc, service=service, parent=parent,
                                        parent_level=level, boards=BOARDS)
        assert kept["_id"] == doc["id"]
        return
    with pytest.raises(AutomationInvalid) as caught:
        domain.validate_category(doc, service=service, parent=parent, parent_level=level,
                                 boards=BOARDS)
    assert set(caught.value.errors) == errors


TEMPLATES = [{"_id": "svc", "service_id": "it", "category_id": None, "steps": [{}]},
             {"_id": "access", "service_id": "it", "category_id": "access", "steps": [{}]},
             {"_id": "crm", "service_id": "it", "category_id": "access-crm", "steps": [{}]},
             {"_id": "off", "service_id": "it", "category_id": "access-crm", "active": False,
              "steps": [{}]},
             # started by a rule's action only, never on arrival
             {"_id": "later", "service_id": "it", "category_id": "access-crm-admin",
              "start": "by_rule", "steps": [{}]}]


@pytest.mark.parametrize(("card", "template"), [
    ({"service_id": "it", "category_path": ["access", "access-crm"]}, "crm"),
    ({"service_id": "it", "category_path": ["access", "access-crm", "access-crm-admin"]},
     "crm"),
    ({"service_id": "it", "category_path": ["access"]}, "access"),
    ({"service_id": "it", "category_path": ["question"]}, "svc"),
    ({"service_id": "it"}, "svc"),
    ({"service_id": "hr"}, None),
])
def test_the_most_specific_request_template_starts(card, template):
    found = domain.template_for(TEMPLATES, card)
    assert (found["_id"] if found else None) == template


def test_a_chain_starts_each_step_after_the_one_before():
    chain = {"steps": [{"title": "HR database"}, {"title": "NDA"}, {"title": "Contract"}],
             "started": []}
    assert domain.next_step(chain) == 0
    chain["started"] = [{"index": 0}, {"index": 1}]
    assert domain.next_step(chain) == 2
    chain["started"].append({"index": 2})
    assert domain.next_step(chain) is None
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert domain.due_at({"due_in_days": 2}, now) == "2026-12-03"
    assert domain.due_at({}, now) is None


@pytest.mark.parametrize(("trigger", "now", "due"), [
    # Monday 2026-11-30; 09:00 in Moscow is 06:00 UTC
    ({"at": "09:00", "days": ["mon"], "timezone": "Europe/Moscow"},
     datetime(2026, 11, 30, 6, 30, tzinfo=UTC), datetime(2026, 11, 30, 6, 0, tzinfo=UTC)),
    ({"at": "09:00", "days": ["mon"], "timezone": "Europe/Moscow"},
     datetime(2026, 11, 30, 5, 59, tzinfo=UTC), None),  # not yet; Sunday is not a day
    ({"at": "09:00", "days": ["mon"], "timezone": "Europe/Moscow"},
     datetime(2026, 12, 1, 5, 0, tzinfo=UTC), datetime(2026, 11, 30, 6, 0, tzinfo=UTC)),
    ({"at": "23:30", "timezone": "UTC"},  # every day
     datetime(2026, 12, 2, 0, 10, tzinfo=UTC), datetime(2026, 12, 1, 23, 30, tzinfo=UTC)),
])
def test_a_schedule_is_due_at_its_local_time_on_its_days(trigger, now, due):
    assert domain.occurrence(trigger, now) == due


def test_time_in_column_matches_its_column_only():
    rule = _rule("stuck", {"type": "time_in_column", "column_id": "new", "minutes": 30})
    assert [d.rule_id for d in domain.evaluate(
        [rule], Happening("time_in_column", "c1", to_column="new"), CARD)] == ["stuck"]
    assert domain.evaluate([rule], Happening("time_in_column", "c1", to_column="doing"),
                           CARD) == []
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert domain.overdue_since(rule["trigger"], now) == datetime(2026, 12, 1, 11, 30,
                                                                  tzinfo=UTC)


@pytest.mark.parametrize(("trigger", "errors"), [
    ({"type": "time_in_column", "column_id": "void", "minutes": 0},
     {"trigger.column_id", "trigger.minutes"}),
    ({"type": "scheduled", "at": "25:00", "days": ["someday"], "timezone": "Mars/Base"},
     {"trigger.at", "trigger.days", "trigger.timezone"}),
])
def test_timed_triggers_are_checked(trigger, errors):
    with pytest.raises(AutomationInvalid) as caught:
        _check(_valid_rule(trigger=trigger))
    assert set(caught.value.errors) == errors


def test_a_schedule_keeps_its_time_zone():
    kept = _check(_valid_rule(trigger={"type": "scheduled", "at": "09:00"}))
    assert kept["trigger"]["timezone"] == "UTC"
