"""Automation at work: each card event (and the clock, for timed rules) runs the rules and
request templates it triggers. (A request's category is applied at card creation:
boards.automation.routing.)

Rules run in boards' `boards.automation` consumer, one transaction per card event, after
the change that caused it committed: the consumer's processed-event record and each run's
id (rule, version, event) make a redelivered event run nothing twice. Every action goes
through the same card operations agents use (boards.application.cards), so WIP limits,
versions, history and the events other services hear are the same. The events a run
causes are remembered with the run's depth; a chain of rules triggering rules is stopped
at `MAX_DEPTH` and the stop is written on the card.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from desk_contracts.catalog import AssignmentRule, Priority
from desk_contracts.events import CardMentioned
from desk_runtime.http import DomainError, Invalid
from desk_runtime.logging import get_logger
from desk_runtime.unit_of_work import UnitOfWork

from boards.application import cards
from boards.automation import domain
from boards.automation.domain import Decision, Happening
from boards.automation.metrics import ACTIONS, CHAIN_STEPS, EVALUATION_SECONDS, RULE_RUNS
from boards.automation.repository import AutomationRepository
from boards.domain.agent import Agent
from boards.domain.card import Card
from boards.domain.cards import choose_assignee, history_entry
from boards.repository import Repositories
from boards.settings import BoardsSettings

log = get_logger(__name__)

BY = "automation"
# Child cards are made in the name of "system": it never becomes one of their participants.
SYSTEM = Agent("system", "Automation", "admin", frozenset())
REPLY_AS = "Service desk"


# --- card events ----------------------------------------------------------------------------

async def on_happening(uow: UnitOfWork, happening: Happening, settings: BoardsSettings, *,
                       event_id: str | None = None,
                       rules: list[Mapping[str, Any]] | None = None) -> None:
    """Run the request templates and rules one card event triggers (a timer names its
    own occurrence as `event_id` and the one rule it is for)."""
    repos = Repositories.of(uow.db)
    auto = AutomationRepository(uow.db)
    rules = rules if rules is not None else await auto.all("rule")
    if not await _may_matter(auto, rules, happening):
        return  # no rule and no template listens for this: not even the card is read
    card = await repos.cards.card(happening.card_id, uow.session)
    if card is None:
        return  # an event of a card this boards does not hold (an integrator's)
    event_id = event_id or (str(uow.causation.event_id) if uow.causation
                            else f"local-{uuid.uuid4()}")
    depth = await auto.depth_of(event_id, uow.session)
    now = datetime.now(UTC)
    mark = len(uow.emitted)
    notes: list[tuple[str, Any, Any]] = []

    await _templates(uow, auto, card, happening, settings, now)

    started = time.perf_counter()
    decisions = domain.evaluate(rules, happening, card.to_document())
    uow.after_commit(EVALUATION_SECONDS.observe, time.perf_counter() - started)
    ran: list[str] = []
    for decision in decisions:
        run_id = f"{decision.rule_id}:{decision.version}:{event_id}"
        run = {"_id": run_id, "card_id": card.id, "rule_id": decision.rule_id,
               "rule_name": decision.rule_name, "version": decision.version,
               "trigger": happening.trigger, "event_id": event_id, "depth": depth, "at": now}
        if not decision.run:
            outcome, did = "skipped", [decision.reason]
        elif depth >= domain.MAX_DEPTH:
            outcome = "loop_stopped"
            did = [f"stopped: {depth} rule runs in a row led here (limit {domain.MAX_DEPTH});"
                   " the rules may be triggering each other"]
        else:
            outcome, did = "ran", []
        if await auto.ran(run_id, uow.session):
            continue  # this event ran this rule before (a redelivery): nothing twice
        if outcome == "ran":
            did = await _carry_out(uow, repos, auto, card.id, decision, settings, now)
            ran.append(decision.rule_id)
        await auto.record_run(run | {"outcome": outcome, "did": did}, uow.session)
        uow.after_commit(RULE_RUNS.labels(outcome).inc)
        if outcome == "loop_stopped":
            log.warning("automation.loop_stopped", card_id=card.id, rule=decision.rule_id,
                        depth=depth)
        notes.append((f"automation: {decision.rule_name}",
                      f"{happening.trigger} ({outcome})", "; ".join(did) or "nothing to do"))

    caused = [str(e.event_id) for e in uow.emitted[mark:]]
    await auto.note_caused(caused, depth + 1, ran, now, uow.session)
    if notes:
        await _write_history(uow, card.id, notes, now)


async def _may_matter(auto: AutomationRepository, rules: Any, happening: Happening) -> bool:
    """Whether any active rule has this trigger, or a request template may start (from the
    process's cached definitions) or a chain go on (a card reached done)."""
    if any(r.get("active", True) and r["trigger"]["type"] == happening.trigger for r in rules):
        return True
    if happening.trigger == "card_moved" and happening.to_category == "done":
        return True  # a step of a chain in progress may be done
    if happening.trigger == "card_created":
        return bool(await auto.all("request_template"))
    return False


async def _write_history(uow: UnitOfWork, card_id: str,
                         notes: list[tuple[str, Any, Any]], now: datetime) -> None:
    """The runs on the card's history, where agents look (by "automation"); no version
    bump (the log is not a change to the card)."""
    await AutomationRepository(uow.db).log_on_card(
        card_id, [history_entry(now, BY, name, before, after) for name, before, after in notes],
        uow.session)


# --- actions --------------------------------------------------------------------------------

async def _carry_out(uow: UnitOfWork, repos: Repositories, auto: AutomationRepository,
                     card_id: str, decision: Decision, settings: BoardsSettings,
                     now: datetime) -> list[str]:
    """Each action of a rule in order, on the card as the one before left it; what each
    did (an action that cannot apply says why and the others still run)."""
    did: list[str] = []
    for action in decision.actions:
        card = await repos.cards.card(card_id, uow.session)
        try:
            said = await _act(uow, repos, auto, card, action, decision, settings, now)
            uow.after_commit(ACTIONS.labels(action["type"], "done" if said else "unchanged").inc)
            did.append(said or f"{action['type']}: already so")
        except (DomainError, KeyError) as exc:
            uow.after_commit(ACTIONS.labels(action["type"], "failed").inc)
            message = exc.message if isinstance(exc, DomainError) else str(exc).strip("'\"")
            did.append(f"{action['type']} failed: {message}")
    return did


async def _edit(uow: UnitOfWork, card: Card, changes: dict[str, Any]) -> bool:
    updated = await cards.edit(uow, card, changes, by=BY, expected_version=card.version,
                               can_see_board=lambda _: True)
    return updated.version != card.version


async def _pick(uow: UnitOfWork, repos: Repositories, rule: Mapping[str, Any], key: str
                ) -> str | None:
    assignment = AssignmentRule.model_validate(rule)
    turn = await repos.cards.next_counter(f"round-robin:{key}") - 1
    load = await repos.cards.open_load(list(assignment.agents), uow.session)
    return choose_assignee(assignment, turn=turn, open_load=load)


async def _act(uow: UnitOfWork, repos: Repositories, auto: AutomationRepository, card: Card,
               action: Mapping[str, Any], decision: Decision, settings: BoardsSettings,
               now: datetime) -> str | None:
    kind = action["type"]
    if kind == "set_type":
        return f"type {action['value']}" if await _edit(uow, card, {"type": action["value"]}) \
            else None
    if kind == "set_priority":
        value = action["value"]
        key = "priority" if value in {p.value for p in Priority} else "priority_key"
        return f"priority {value}" if await _edit(uow, card, {key: value}) else None
    if kind in ("add_labels", "remove_labels"):
        labels = domain.label_change(card.labels, action)
        verb = "added" if kind == "add_labels" else "removed"
        return (f"labels {verb}: {', '.join(action['labels'])}"
                if await _edit(uow, card, {"labels": labels}) else None)
    if kind == "set_due_date":
        due = domain.due_date_after(action["days"], now.date())
        return f"due {due}" if await _edit(uow, card, {"due_date": due}) else None
    if kind == "add_checklist":
        return await _add_checklist(uow, auto, card, action["checklist_template_id"])
    if kind == "set_assignee":
        chosen = await _pick(uow, repos, action["assignment"], f"rule:{decision.rule_id}")
        if chosen is None or chosen == card.assignee_id:
            return None
        await cards.assign(uow, card, chosen, by=BY, expected_version=None)
        return f"assigned to {chosen}"
    if kind == "set_column":
        moved = await cards.move(uow, card, action["column_id"], card.lane_id, by=BY)
        return f"moved to {action['column_id']}" if moved.version != card.version else None
    if kind == "set_lane":
        moved = await cards.move(uow, card, card.column_id, action["lane_id"], by=BY)
        return f"lane {action['lane_id']}" if moved.version != card.version else None
    if kind in ("reply", "note"):
        visibility = "public" if kind == "reply" else "internal"
        await cards.comment(uow, card, agent_id=BY, agent_name=REPLY_AS,
                            text=action.get("text"), visibility=visibility,
                            canned_response_id=action.get("canned_response_id"))
        return "replied to the customer" if kind == "reply" else "internal note added"
    if kind == "notify":
        return await _notify(uow, repos, card, action["agents"], decision)
    if kind == "create_children":
        made = []
        for spec in action["children"]:  # each child link moves the parent's version on
            parent = await repos.cards.card(card.id, uow.session)
            made.append(await _child(uow, auto, parent, spec, settings, now))
        return f"children created: {', '.join(c.number for c in made)}"
    if kind == "move_parent_when_children_done":
        return await _move_parent(uow, repos, card, action["column_id"])
    if kind == "start_template":
        template = await auto.one("request_template", action["request_template_id"],
                                  uow.session)
        if template is None:
            raise Invalid(f"request template {action['request_template_id']!r} is gone")
        started = await _start_chain(uow, auto, card, template, settings, now)
        return f"template {template['name']!r} started" if started else None
    raise Invalid(f"unknown action {kind!r}")


async def _add_checklist(uow: UnitOfWork, auto: AutomationRepository, card: Card,
                         template_id: str) -> str | None:
    template = await auto.one("checklist", template_id, uow.session)
    if template is None:
        raise Invalid(f"checklist template {template_id!r} is gone")
    checklist = domain.checklist_after(card.checklist, template)
    if checklist is None or not await _edit(uow, card, {"checklist": checklist}):
        return None
    return f"checklist {template['name']!r} added"


async def _notify(uow: UnitOfWork, repos: Repositories, card: Card, agent_ids: list[str],
                  decision: Decision) -> str | None:
    """The agents hear of the card by their route (e-mail, Slack), as for a mention."""
    told = []
    service = await repos.catalog.service(card.service_id, uow.session) if card.service_id \
        else None
    for agent_id in agent_ids:
        contact = cards._contact(await repos.agents.active_agent(agent_id, uow.session))
        if contact is None:
            continue
        await uow.emit(CardMentioned(card=card.snapshot(service), agent=contact,
                                     by=f"Automation ({decision.rule_name})"))
        told.append(agent_id)
    return f"notified {', '.join(told)}" if told else None


def _title(spec: Mapping[str, Any], parent: Card) -> str:
    return spec["title"].replace("{number}", parent.number).replace("{title}", parent.title)


async def _child(uow: UnitOfWork, auto: AutomationRepository, parent: Card,
                 spec: Mapping[str, Any], settings: BoardsSettings, now: datetime) -> Card:
    """A child card on the spec's board: its type, assignee rule, checklist and due date."""
    repos = Repositories.of(uow.db)
    assignee = (await _pick(uow, repos, spec["assignment"], f"child:{spec['board_id']}")
                if spec.get("assignment") else None)
    child = await cards.create_child(
        uow, parent, SYSTEM, board_id=spec["board_id"], title=_title(spec, parent),
        text=spec.get("text"), card_type=spec.get("type"), priority_key=None, fields={},
        due_date=domain.due_at(spec, now), assignee_id=assignee, column_id=None,
        lane_id=None, prefix=settings.card_prefix)
    if spec.get("checklist_template_id"):
        await _add_checklist(uow, auto, child, spec["checklist_template_id"])
    return child


async def _move_parent(uow: UnitOfWork, repos: Repositories, card: Card, column_id: str
                       ) -> str | None:
    if not card.parent_id:
        return None
    parent = await repos.cards.card(card.parent_id, uow.session)
    rows = await repos.cards.children_of(parent.id, uow.session)
    still_open = [n for n, category in rows if category != "done"]
    if still_open or parent.column_id == column_id:
        return None
    await cards.move(uow, parent, column_id, parent.lane_id, by=BY)
    return f"parent {parent.number} moved to {column_id}"


# --- request templates: a chain of steps ----------------------------------------------------

async def _templates(uow: UnitOfWork, auto: AutomationRepository, card: Card,
                     happening: Happening, settings: BoardsSettings, now: datetime) -> None:
    """A new request starts its template's chain; a step reaching done starts the next."""
    if happening.trigger == "card_created" and not card.is_task:
        template = domain.template_for(await auto.all("request_template"), card.to_document())
        if template is not None:
            await _start_chain(uow, auto, card, template, settings, now)
    elif happening.trigger == "card_moved" and happening.to_category == "done":
        chain = await auto.chain_of_step(card.id, uow.session)
        if chain is None or chain.get("finished_at") or chain["started"][-1]["card_id"] != card.id:
            return
        index = domain.next_step(chain)
        if index is not None:
            await _start_step(uow, auto, chain["_id"], chain, index, settings, now)
            return
        await auto.chain_finished(chain["_id"], now, uow.session)
        said = "all steps done"
        repos = Repositories.of(uow.db)
        parent = await repos.cards.card(chain["_id"], uow.session)
        if chain.get("done_column_id") and parent is not None and \
                parent.column_id != chain["done_column_id"]:
            try:
                await cards.move(uow, parent, chain["done_column_id"], parent.lane_id, by=BY)
                said += f"; {parent.number} moved to {chain['done_column_id']}"
            except (DomainError, KeyError) as exc:
                said += f"; moving {parent.number} failed: {getattr(exc, 'message', exc)}"
        await _write_history(uow, chain["_id"], [
            (f"template: {chain['template_name']}", None, said)], now)


async def _start_chain(uow: UnitOfWork, auto: AutomationRepository, card: Card,
                       template: Mapping[str, Any], settings: BoardsSettings, now: datetime
                       ) -> bool:
    """The template's chain on this card: its checklist, then step 1 (False: a chain
    runs on the card already — one per card)."""
    chain = {"_id": card.id, "template_id": template["_id"],
             "template_name": template["name"], "steps": template["steps"],
             "done_column_id": template.get("done_column_id"), "started": [], "at": now}
    if not await auto.start_chain(chain, uow.session):
        return False
    if template.get("checklist_template_id"):
        await _add_checklist(uow, auto, card, template["checklist_template_id"])
    await _start_step(uow, auto, card.id, chain, 0, settings, now)
    return True


async def _start_step(uow: UnitOfWork, auto: AutomationRepository, parent_id: str,
                      chain: Mapping[str, Any], index: int, settings: BoardsSettings,
                      now: datetime) -> None:
    """The chain's step `index` as a child card of the request; the request's history
    says which step started."""
    repos = Repositories.of(uow.db)
    parent = await repos.cards.card(parent_id, uow.session)
    step = chain["steps"][index]
    child = await _child(uow, auto, parent, step, settings, now)
    await auto.step_started(parent_id, index, child.id, child.number, uow.session)
    uow.after_commit(CHAIN_STEPS.labels(chain["template_id"]).inc)
    await _write_history(uow, parent_id, [
        (f"template: {chain['template_name']}", None,
         f"step {index + 1} of {len(chain['steps'])}: {child.number} {child.title}")], now)


# --- the clock: time in a column, schedules ----------------------------------------------------

# how many cards per rule a round of the clock takes (how often it looks for cards a timed
# rule is due for: BOARDS_AUTOMATION_TIMER_SECONDS)
TIMER_BATCH = 200


# where each timed rule's walk over its cards stands (per process; from the start again
# after a batch shorter than TIMER_BATCH)
_WALKS: dict[str, str | None] = {}


async def timer_round(runtime, settings: BoardsSettings) -> float:
    """Run each timed rule for the cards it is due for: a card in its column longer than
    the rule says (once per stay in the column), or every open card of the board at the
    rule's scheduled time (once per occurrence). Any number of replicas may run this: a
    run's id names the rule, the card and the stay or occurrence, so each runs once."""
    auto = AutomationRepository(runtime.db)
    now = datetime.now(UTC)
    busy = False
    for rule in await auto.all("rule"):
        trigger = rule["trigger"]
        if trigger["type"] not in domain.TIMED or not rule.get("active", True):
            continue
        walk = _WALKS.get(rule["_id"])
        if trigger["type"] == "time_in_column":
            due = await auto.cards_in_column_since(
                rule["board_id"], trigger["column_id"], domain.overdue_since(trigger, now),
                TIMER_BATCH, walk)
            keyed = [(c, f"timer:{c['_id']}:{c['column_entered_at'].isoformat()}")
                     for c in due]
            happening = "time_in_column"
        else:
            occurrence = domain.occurrence(trigger, now)
            if occurrence is None:
                continue
            due = await auto.open_cards(rule["board_id"], TIMER_BATCH, walk)
            keyed = [(c, f"schedule:{c['_id']}:{occurrence.isoformat()}") for c in due]
            happening = "scheduled"
        _WALKS[rule["_id"]] = due[-1]["_id"] if len(due) == TIMER_BATCH else None
        busy = busy or len(due) == TIMER_BATCH
        version = int(rule.get("version", 1))
        done = await auto.ran_already([f"{rule['_id']}:{version}:{key}" for _, key in keyed])
        for card, key in keyed:
            if f"{rule['_id']}:{version}:{key}" in done:
                continue
            busy = True
            try:
                await runtime.transact(lambda uow, c=card, k=key: on_happening(
                    uow, Happening(happening, c["_id"], to_column=c["column_id"]), settings,
                    event_id=k, rules=[rule]), kind="automation_timer")
            except DomainError as exc:  # this card's run is refused; the others still run
                log.warning("automation.timer_failed", rule=rule["_id"], card_id=card["_id"],
                            error=exc.message)
    return 0 if busy else settings.automation_timer_seconds
