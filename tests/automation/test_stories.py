"""Our users' four automation stories, end to end through the five services with the demo
catalog: requests filed through intake's web API, cards in boards, clocks in sla, e-mail
through notify's SMTP, and the customer's view in the portal's read model."""

from __future__ import annotations

import httpx
import pytest

from tests.support.stack import mongo_find, sla_auth, wait_until

pytestmark = pytest.mark.slow


def _sla(stack, card_id: str) -> dict:
    return wait_until(lambda: (r := httpx.get(
        f"{stack['sla'].url}/v1/cards/{card_id}/sla", headers=sla_auth(stack))
    ).status_code == 200 and r.json(), timeout=30)


def test_hopper_it_the_category_sets_type_priority_sla_and_assignee(stack, boards, mail):
    access = boards.submit("it-request", "Access to the CRM",
                           {"category": "access", "system": "crm", "crm_role": "read"})
    assert (access["board_id"], access["lane_id"], access["type"]) == ("it", "main", "access")
    assert (access["priority"], access["assignee_id"]) == ("high", "it-duty")
    # sla runs the category's policy: 40 minutes to the first response at high priority
    record = _sla(stack, access["id"])
    assert record["policy"] == "access"
    first = next(t for t in record["targets"] if t["target"] == "first_response")
    # the prepared answer below may already have met it: a met clock has no deadline left
    assert first["budget_minutes"] == 40
    assert first["deadline"] is not None or first["state"] == "met", first
    # the prepared answer reaches the customer by e-mail, after the acknowledgment
    answer = wait_until(lambda: [m for m in mail.to(access["email"])
                                 if "within 40 minutes" in m.get_body(("plain",)).get_content()],
                        timeout=30)
    assert answer[0]["Subject"] == f"Re: [{access['number']}] Access to the CRM"
    runs = wait_until(lambda: [r for r in boards.runs(access["id"]) if r["outcome"] == "ran"])
    assert runs[0]["rule_id"] == "hopper-access-answer"
    assert runs[0]["did"] == ["replied to the customer"]
    # that public answer is the request's first response: its clock stops, met in time
    met = wait_until(lambda: [t for t in _sla(stack, access["id"])["targets"]
                              if t["target"] == "first_response" and t["state"] == "met"])
    assert met[0]["completed_at"] is not None and met[0]["breached_at"] is None

    # a deeper category overrides: CRM administrator rights are critical, urgent, the lead's
    admin = boards.submit("it-request", "Admin rights in the CRM",
                          {"category": "access", "system": "crm", "crm_role": "admin"})
    assert (admin["priority"], admin["lane_id"], admin["assignee_id"], admin["type"]) == \
        ("critical", "urgent", "it-lead", "access")
    # a question: medium, the consultation policy (8 business hours), no prepared answer
    question = boards.submit("it-request", "How do I share a calendar?",
                             {"category": "question"})
    assert (question["type"], question["priority"]) == ("question", "medium")
    assert _sla(stack, question["id"])["policy"] == "consultation"
    skipped = wait_until(lambda: [r for r in boards.runs(question["id"])
                                  if r["rule_id"] == "hopper-access-answer"])
    assert skipped[0]["outcome"] == "skipped"
    assert skipped[0]["did"] == ["condition not met: category in [it-access]"]
    # the skip is in the card's history, where agents look
    assert any(h["field"] == "automation: Access request: prepared answer"
               and h["from"] == "card_created (skipped)"
               for h in boards.card(question["id"])["history"])


def test_yoga_academy_onboarding_runs_down_the_chain_of_subtasks(boards):
    hire = boards.submit("hr-request", "Maria Ivanova", {"kind": "onboarding"},
                         email="maria@yoga.example", name="Maria")
    titles = []
    for step in range(3):
        children = wait_until(lambda n=step + 1: (c := boards.children(hire["id"]))
                              and len(c) == n and c, timeout=30)
        assert len(children) == step + 1  # the next step only once the one before is done
        current = children[-1]
        titles.append(current["title"])
        assert (current["board_id"], current["assignee_id"], current["kind"]) == \
            ("hr", "hr-officer", "task")
        assert current["due_date"] is not None
        if step == 1:  # the NDA step carries its checklist
            assert [i["text"] for i in current["checklist"]] == ["NDA sent", "NDA signed",
                                                                  "Scan stored"]
        boards.move(current, "done")
    assert titles == ["Enter Maria Ivanova into the HR database",
                      "Sign the NDA: Maria Ivanova",
                      "Sign the employment contract: Maria Ivanova"]
    # all steps done: the request itself is done, and its history tells the chain
    done = wait_until(lambda: (c := boards.card(hire["id"]))["column_id"] == "done" and c,
                      timeout=30)
    told = [h["to"] for h in done["history"] if h["field"] == "template: Onboarding"]
    assert told[0].startswith("step 1 of 3")
    assert told[-1].startswith("all steps done")


def test_ati_an_accepted_offer_makes_a_card_per_department(boards, stack, mongo_url):
    hire = boards.submit("hr-request", "Ivan Petrov", {"kind": "new-hire"},
                         email="ivan@ati.example", name="Ivan")
    assert hire["assignee_id"] == "hr-officer"
    boards.move(hire, "offer-accepted")
    children = wait_until(lambda: (c := boards.children(hire["id"])) and len(c) == 2 and c,
                          timeout=30)
    assert sorted((c["board_id"], c["title"], c["assignee_id"]) for c in children) == [
        ("finance", "Payroll and contract for Ivan Petrov", "accountant"),
        ("it", "Workplace for Ivan Petrov", "it-duty")]
    it_card = next(c for c in children if c["board_id"] == "it")
    assert [i["text"] for i in it_card["checklist"]] == ["Laptop", "Mail account", "VPN access"]
    # one department done: the hire waits for the other
    boards.move(it_card, "done")
    wait_until(lambda: any(r["rule_id"] == "ati-it-done" for r in boards.runs(it_card["id"])))
    assert boards.card(hire["id"])["column_id"] == "offer-accepted"
    finance = next(c for c in children if c["board_id"] == "finance")
    boards.move(finance, "done")
    onboarded = wait_until(lambda: (c := boards.card(hire["id"]))["column_id"] == "onboarded"
                           and c, timeout=30)
    assert onboarded["status_category"] == "done"
    # the portal shows the customer's request as done too (card.moved reached it)
    portal_rows = wait_until(lambda: [d for d in mongo_find(
        mongo_url, f"{stack.namespace}_portal", "requests", {"card_id": hire["id"]})
        if d.get("status_category") == "done"], timeout=30)
    assert portal_rows


def test_activecloud_every_idea_gets_the_validation_checklist(boards, stack):
    idea = boards.submit("idea", "Dark theme for the console", email="ops@activecloud.example")
    card = wait_until(lambda: (c := boards.card(idea["id"]))["checklist"] and c, timeout=30)
    assert [i["text"] for i in card["checklist"]] == [
        "Does it fit the product roadmap?", "Who asked for it besides this customer?",
        "Rough effort estimate", "Decision written on the card"]
    assert not any(i["done"] for i in card["checklist"])
    r = boards.http.get(f"/v1/cards/{idea['id']}/automation").json()
    assert r["checklist"] == {"done": 0, "total": 4}
    assert r["items"][0]["did"] == ["checklist 'Idea validation' added"]
