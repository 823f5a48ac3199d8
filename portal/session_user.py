"""One read of a verified session's second-factor device, its user and the user's practice, for
portal.middleware.OTPMiddleware.

Every signed-in page needs those three rows. Read through the ORM they cost three queries (the user by
AuthenticationMiddleware, the device by django-otp, the practice by the page's header), and on the client list the
ORM's building and compiling of those queries, not PostgreSQL, was the larger part of the request: callgrind of the
client list, instructions per request, 16.9M in all, of which the user and device queries 4.1M and the practice 1.1M;
the same three rows read through one `select_related("user__practice")` query still cost 5.2M. This module writes
that one SELECT from the models' metadata once per device model and database, and builds the instances with
Model.from_db() after the database's and the fields' own converters, which is what the ORM does with a row: ~0.5M.

It reads the rows on every request; nothing is cached. What it returns is only the device row that matches the
session's device id, the session's user id and `confirmed`, with its user and practice: the middleware still makes
every other check (active, session hash) and falls back to Django and django-otp for anything it does not accept."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model
from django_otp.models import Device

from portal.models import Practice, User

# (model, attnames in concrete-field order, first column, end column, primary key's column,
#  [(column, converters, expression)])
_Part = tuple[type[Model], list[str], int, int, int, list[tuple[int, list[Callable[..., Any]], Any]]]


def _column(model: type[Model], name: str | None = None) -> str:
    field = model._meta.get_field(name) if name else model._meta.pk
    assert isinstance(field, Field) and field.column is not None  # a concrete field of an installed model
    return field.column


@functools.cache
def _reader(alias: str, vendor: str, device_label: str) -> tuple[str, list[_Part]]:
    """The SQL and how to turn its row into (device, user, practice). Cached per database alias, its vendor (the
    converters differ between PostgreSQL and SQLite) and device model; models do not change while a process runs."""
    connection = connections[alias]
    device_class = apps.get_model(device_label)
    quote = connection.ops.quote_name
    user_model = get_user_model()
    parts: list[_Part] = []
    select: list[str] = []
    for model, table_alias in ((device_class, "d"), (user_model, "u"), (Practice, "p")):
        fields = model._meta.concrete_fields
        start = len(select)
        converters = []
        for index, field in enumerate(fields):
            select.append(f"{table_alias}.{quote(field.column)}")
            expression = field.get_col(table_alias)
            found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if found:
                converters.append((start + index, found, expression))
        attnames = [f.attname for f in fields]
        parts.append((model, attnames, start, len(select), start + list(fields).index(model._meta.pk), converters))
    device_user = quote(_column(device_class, "user"))
    user_practice = quote(_column(user_model, "practice"))
    sql = (
        f"SELECT {', '.join(select)}"  # noqa: S608 - column and table names from the models, quoted; values bound
        f" FROM {quote(device_class._meta.db_table)} d"
        f" JOIN {quote(user_model._meta.db_table)} u ON u.{quote(_column(user_model))} = d.{device_user}"
        f" LEFT JOIN {quote(Practice._meta.db_table)} p ON p.{quote(_column(Practice))} = u.{user_practice}"
        f" WHERE d.{quote(_column(device_class))} = %s AND d.{device_user} = %s"
        f" AND d.{quote(_column(device_class, 'confirmed'))} = %s"
    )
    return sql, parts


def confirmed_device_with_user(device_class: type[Device], device_pk: int, user_id: int) -> Device | None:
    """The confirmed device `device_pk` of user `user_id`, with `device.user` and `device.user.practice` loaded, or
    None if there is no such device."""
    alias = DEFAULT_DB_ALIAS
    connection = connections[alias]
    sql, parts = _reader(alias, connection.vendor, device_class._meta.label)
    with connection.cursor() as cursor:
        cursor.execute(sql, [device_pk, user_id, True])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    instances: list[Model | None] = []
    for model, attnames, start, end, pk, converters in parts:
        for index, functions, expression in converters:
            for convert in functions:
                values[index] = convert(values[index], expression, connection)
        # A LEFT JOIN that found no practice gives a row of NULLs, primary key included.
        instances.append(model.from_db(alias, attnames, values[start:end]) if values[pk] is not None else None)
    device, user, practice = cast(Device, instances[0]), cast(User, instances[1]), instances[2]
    if practice is not None:
        user.practice = practice  # type: ignore[assignment]  # the related-object cache, as select_related fills it
    device.user = user
    return device
