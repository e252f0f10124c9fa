"""Two workers routing at once (PostgreSQL, separate connections): the rotation row lock gives
each lead exactly one assignee and consecutive slots, so the shares stay exact."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from handoff.assigning import route_lead
from handoff.models import Assignment, RotationState
from pipeline.models import Lead
from tenants.context import tenant_context
from tests.handoff.routing.conftest import MONDAY, make_lead, make_version


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_routing_at_once_give_each_lead_one_assignee(
    tenant_a: Any, sellers: list[Any], field_team: Any
) -> None:
    from django.db import connection

    # given a round-robin over three sellers and eight new SQL leads
    version = make_version(tenant_a, routing={"sql": {"teamId": field_team.pk}})
    leads = [make_lead(tenant_a, company=f"C{i}") for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(batch: list[Lead]) -> None:
        try:
            barrier.wait()
            for lead in batch:
                route_lead(lead=lead, stage="sql", version=version, at=MONDAY)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    # when two workers route half of them each, at the same time
    threads = [threading.Thread(target=work, args=(leads[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then every lead has exactly one assignee, who owns it
    assert errors == []
    with tenant_context(tenant_a):
        assigned = list(Assignment.objects.values_list("lead_id", "member_id"))
        owners = dict(Lead.objects.values_list("pk", "owner_id"))
        position = RotationState.objects.get(stage="sql", team=field_team).position
    assert sorted(lead for lead, _ in assigned) == sorted(lead.pk for lead in leads)
    assert all(owners[lead] == member for lead, member in assigned)
    # and the slots were consecutive: 8 leads over 3 sellers are 3, 3 and 2
    assert sorted(Counter(member for _, member in assigned).values()) == [2, 3, 3]
    assert position == 8 % 3
