"""Login, users, API tokens and ACLs: enough of ``/access`` to set up a limited token."""

import secrets
from typing import Any

from labsmith.sim.acl_store import ROLES
from labsmith.sim.auth import add_token, hash_password
from labsmith.sim.formats import split_list
from labsmith.sim.handlers.base import Call, fail, handles
from labsmith.sim.state import AclRule, User


@handles("/access/ticket", "POST")
def login(call: Call) -> dict[str, Any]:
    username = str(call.params["username"])
    if "@" not in username and call.params.get("realm"):
        username = f"{username}@{call.params['realm']}"
    ticket, csrf = call.sim.auth.login(username, str(call.params["password"]))
    return {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf, "cap": {}}


@handles("/access/users", "GET")
def list_users(call: Call) -> list[dict[str, Any]]:
    rows = []
    for userid in sorted(call.state.users):
        user = call.state.users[userid]
        row: dict[str, Any] = {"userid": userid, "enable": int(user.enable)}
        if call.params.get("full"):
            row["tokens"] = [
                {"tokenid": name, "privsep": int(token.privsep), "expire": token.expire}
                for name, token in sorted(user.tokens.items())
            ]
        rows.append(row)
    return rows


@handles("/access/users", "POST")
def create_user(call: Call) -> None:
    userid = str(call.params["userid"])
    if userid in call.state.users:
        raise fail(f"create user failed: user '{userid}' already exists")
    user = User(userid=userid, enable=bool(call.params.get("enable", True)))
    if "password" in call.params:
        user.password_hash = hash_password(str(call.params["password"]))
    user.comment = str(call.params.get("comment", ""))
    call.state.users[userid] = user


def _user(call: Call) -> User:
    userid = call.path_params["userid"]
    user = call.state.users.get(userid)
    if user is None:
        raise fail(f"no such user ('{userid}')")
    return user


@handles("/access/users/{userid}/token", "GET")
def list_tokens(call: Call) -> list[dict[str, Any]]:
    user = _user(call)
    return [
        {"tokenid": name, "privsep": int(token.privsep), "expire": token.expire}
        for name, token in sorted(user.tokens.items())
    ]


@handles("/access/users/{userid}/token/{tokenid}", "POST")
def create_token(call: Call) -> dict[str, Any]:
    user = _user(call)
    name = call.path_params["tokenid"]
    if name in user.tokens:
        raise fail("Token already exists.")
    secret = secrets.token_hex(16)
    secret = f"{secret[:8]}-{secret[8:12]}-{secret[12:16]}-{secret[16:20]}-{secret[20:32]}"
    privsep = bool(call.params.get("privsep", True))
    full_id = f"{user.userid}!{name}"
    add_token(call.state, full_id, secret, privsep=privsep)
    token = user.tokens[name]
    token.comment = str(call.params.get("comment", ""))
    token.expire = int(call.params.get("expire", 0))
    return {
        "full-tokenid": full_id,
        "info": {"privsep": int(privsep), "expire": token.expire, "comment": token.comment},
        "value": secret,
    }


@handles("/access/users/{userid}/token/{tokenid}", "DELETE")
def delete_token(call: Call) -> None:
    user = _user(call)
    name = call.path_params["tokenid"]
    if user.tokens.pop(name, None) is None:
        raise fail(f"no such token '{name}' for user '{user.userid}'")
    full_id = f"{user.userid}!{name}"
    call.state.acl = [rule for rule in call.state.acl if rule.token != full_id]
    call.sim.reload_acl()


@handles("/access/acl", "GET")
def read_acl(call: Call) -> list[dict[str, Any]]:
    rows = []
    for rule in call.state.acl:
        if rule.user is not None:
            kind, ugid = "user", rule.user
        else:
            kind, ugid = "token", str(rule.token)
        rows.append(
            {
                "path": rule.path,
                "roleid": rule.role,
                "type": kind,
                "ugid": ugid,
                "propagate": int(rule.propagate),
            }
        )
    return rows


@handles("/access/acl", "PUT")
def update_acl(call: Call) -> None:
    path = str(call.params["path"])
    roles = split_list(call.params["roles"])
    users = split_list(call.params.get("users", ""))
    tokens = split_list(call.params.get("tokens", ""))
    if call.params.get("groups"):
        raise fail("groups are not supported by labsmith sim; grant to users or tokens")
    for role in roles:
        if role not in ROLES:
            raise fail(f"role '{role}' does not exist")
    for userid in users:
        if userid not in call.state.users:
            raise fail(f"user '{userid}' does not exist")
    for token in tokens:
        userid, _, name = token.partition("!")
        if name not in getattr(call.state.users.get(userid), "tokens", {}):
            raise fail(f"no such token '{name}' for user '{userid}'")
    propagate = bool(call.params.get("propagate", True))
    delete = bool(call.params.get("delete", False))
    for role in roles:
        for who, field in [*((u, "user") for u in users), *((t, "token") for t in tokens)]:
            call.state.acl = [
                rule
                for rule in call.state.acl
                if not (rule.path == path and rule.role == role and getattr(rule, field) == who)
            ]
            if not delete:
                rule = AclRule(path=path, role=role, propagate=propagate)
                setattr(rule, field, who)
                call.state.acl.append(rule)
    call.sim.reload_acl()
