"""An agent hears about their own cards: assignment and @mentions by their e-mail or Slack
webhook, in their language; a task card (no requester) never makes customer mail."""

from __future__ import annotations

import uuid

import pytest
from desk_contracts.catalog import StatusCategory
from desk_contracts.events import AgentContact, CardAssigned, CardMentioned, CardMoved

from tests.notify.conftest import Desk
from tests.support.stack import wait_until

pytestmark = pytest.mark.slow


def addr(who: str) -> str:
    return f"{who}.{uuid.uuid4().hex[:6]}@desk.example"


def test_assignee_is_told_by_mail_in_their_language(desk: Desk):
    card = desk.card(email=addr("cust"))
    desk.create(card)
    dev = addr("dev")
    desk.publish(CardAssigned(card=desk.next_version(card, assignee_id="ag-1"),
                              assignee=AgentContact(agent_id="ag-1", email=dev, language="ru"),
                              assigned_by="boris"))
    [message] = desk.mail.wait_for(dev)
    assert message["Subject"] == f"Карточка {card.number} теперь ваша: {card.title}"
    body = message.get_body(("plain",)).get_content()
    assert "Кто назначил: boris." in body and f"/cards/{card.number}" in body
    # taking a card yourself (no contact on the event) tells nobody
    desk.publish(CardAssigned(card=desk.next_version(card, assignee_id="ag-2")))
    lead = addr("lead")  # a later event of the same card: once it is handled, so was that one
    desk.publish(CardAssigned(card=desk.next_version(card, assignee_id="ag-3"),
                              assignee=AgentContact(agent_id="ag-3", email=lead)))
    [english] = desk.mail.wait_for(lead)
    assert english["Subject"] == f"{card.number} is yours: {card.title}"
    assert len(desk.mail.to(dev)) == 1


def test_a_mention_reaches_the_agents_slack_and_a_task_no_customer(desk: Desk):
    hook = desk.slack.webhook_url(f"dm-{uuid.uuid4().hex[:6]}")
    task = desk.card(email=addr("nobody")).model_copy(
        update={"requester": None, "kind": "task", "channel": "agent"})
    desk.create(task)
    desk.publish(CardMentioned(card=task, agent=AgentContact(
        agent_id="ag-3", slack_webhook_url=hook), by="Boris", reason="mention"))
    [post] = wait_until(lambda: desk.slack.webhook_posts(hook))
    assert f"Boris mentioned you on {task.number}" in post["text"]
    done = desk.next_version(task, status_category=StatusCategory.DONE, column_id="done")
    desk.publish(CardMoved(card=done, from_column_id="queue", from_lane_id="l1",
                           from_category="queued"))
    desk.publish(CardMentioned(card=done, agent=AgentContact(
        agent_id="ag-3", slack_webhook_url=hook), by="ag-9", reason="followed_change"))
    wait_until(lambda: len(desk.slack.webhook_posts(hook)) == 2)
    assert "which you follow, is now in column done" in desk.slack.webhook_posts(hook)[1]["text"]
    # nothing for a customer came from the task: no acknowledgment, no rating request
    assert [d for d in desk.deliveries(card_id=task.card_id) if d["audience"] == "customer"] == []


def test_a_follower_hears_what_changed_once_even_when_the_event_comes_twice(desk: Desk):
    card = desk.card(email=addr("cust"))
    desk.create(card)
    follower = addr("lead")
    contact = AgentContact(agent_id="ag-5", email=follower, language="en")
    note = desk.publish(CardMentioned(card=card, agent=contact, by="Boris",
                                      reason="followed_change", change="internal_note"))[0]
    desk.publish(note)  # the same event again (a redelivery): no second message
    ru = addr("lead-ru")
    closed = desk.next_version(card, status_category=StatusCategory.DONE, column_id="done")
    desk.publish(CardMentioned(card=closed, agent=AgentContact(
        agent_id="ag-6", email=ru, language="ru"), by="Борис", reason="followed_change",
        change="closed"))
    desk.publish(CardMentioned(card=closed, agent=contact, by="Anna",
                               reason="followed_change", change="customer_reply"))
    [ru_message] = desk.mail.wait_for(ru)
    assert (f"Карточка {card.number} «{card.title}», за которой вы следите, закрыта. "
            "Кто закрыл: Борис.") in ru_message.get_body(("plain",)).get_content()
    messages = wait_until(lambda: len(desk.mail.to(follower)) == 2 and desk.mail.to(follower))
    bodies = sorted(m.get_body(("plain",)).get_content() for m in messages)
    assert f"Boris added an internal note to card {card.number}" in bodies[0]
    assert f"The customer (Anna) replied on card {card.number}" in bodies[1]
    assert all(m["Subject"] == f"{card.number} changed: {card.title}" for m in messages)
    # the later event was delivered, so the duplicate of the first was handled before it
    assert len(desk.deliveries(cause_event_id=str(note.event_id))) == 1
