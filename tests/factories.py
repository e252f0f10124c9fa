"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from tenants import services
from tenants.context import tenant_context
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: f"{o.slug} 株式会社")

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Tenant:
        # Through the service, so every app's defaults for a new tenant are seeded.
        timezone_name = kwargs.pop("timezone", "Asia/Tokyo")
        return services.tenant_create(timezone_name=timezone_name, **kwargs)


class TenantOwnedFactory(DjangoModelFactory):
    """Creates rows inside their tenant's context, as the application itself does."""

    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        with tenant_context(kwargs["tenant"]):
            return super()._create(model_class, *args, **kwargs)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def _save(obj, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class TeamFactory(TenantOwnedFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(TenantOwnedFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Role.REP


def api_token(tenant: Tenant, *scopes: str, name: str = "test") -> str:
    """The secret of a new API token of `tenant` with these scopes, made by the service."""
    _, secret = services.api_token_create(tenant=tenant, name=name, scopes=list(scopes))
    return secret
