"""The demo data set of ``make run`` (listed in docs/getting-started.md): three merchants,
four terminals, verified settlement accounts, API keys and console users, seeded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from autosettle.domain.console_users import UserRole
from autosettle.domain.errors import AutosettleError
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.private_files import open_private_text, private_dir, tighten_file
from autosettle.services import apikeys, merchants, terminal_queries, users
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.merchants import NewMerchant, NewSettlementAccount, NewTerminal


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    merchant: NewMerchant
    account: NewSettlementAccount
    terminals: tuple[NewTerminal, ...]


DEMO_MERCHANTS: tuple[DemoMerchant, ...] = (
    DemoMerchant(
        NewMerchant("898310054110001", "华联超市有限公司 Hualian Supermarket Co., Ltd.",
                    MerchantType.ENTERPRISE, "5411", short_name="Hualian Supermarket",
                    settlement_cycle=CycleCode.T1),
        NewSettlementAccount("Industrial and Commercial Bank of China", "6212260200001234567",
                             "华联超市有限公司 Hualian Supermarket Co., Ltd.",
                             AccountType.CORPORATE, "102"),
        (NewTerminal("HL000001", "SN-HL-0001", "PAX A920 80mm"),
         NewTerminal("HL000002", "SN-HL-0002", "Newland ME31 58mm")),
    ),
    DemoMerchant(
        NewMerchant("898310058120001", "王建国 Wang Jianguo (Lao Wang Noodles)",
                    MerchantType.INDIVIDUAL, "5812", short_name="Lao Wang Noodles",
                    settlement_cycle=CycleCode.D0, single_limit_minor=500_000),
        NewSettlementAccount("China Construction Bank", "6217000010002345678",
                             "王建国 Wang Jianguo (Lao Wang Noodles)", AccountType.PERSONAL,
                             "105"),
        (NewTerminal("LW000001", "SN-LW-0001", "Centerm K9"),),
    ),
    DemoMerchant(
        NewMerchant("898310059120001", "康健大药房有限公司 Kangjian Pharmacy Co., Ltd.",
                    MerchantType.ENTERPRISE, "5912", short_name="Kangjian Pharmacy",
                    settlement_cycle=CycleCode.T1),
        NewSettlementAccount("Agricultural Bank of China", "6228480010003456789",
                             "康健大药房有限公司 Kangjian Pharmacy Co., Ltd.",
                             AccountType.CORPORATE, "103"),
        (NewTerminal("KJ000001", "SN-KJ-0001", "PAX S90"),),
    ),
)


# Console logins of the demo (docs/console.md): known passwords, for the demo only.
DEMO_USERS: tuple[users.NewUser, ...] = (
    users.NewUser("operator", "operator-demo", UserRole.OPERATOR, None, "Demo operator"),
    users.NewUser("hualian", "hualian-demo", UserRole.MERCHANT, "898310054110001",
                  "Hualian Supermarket"),
    users.NewUser("laowang", "laowang-demo", UserRole.MERCHANT, "898310058120001",
                  "Lao Wang Noodles"),
    users.NewUser("kangjian", "kangjian-demo", UserRole.MERCHANT, "898310059120001",
                  "Kangjian Pharmacy"),
)


def keys_file(ctx: ServiceContext) -> Path:
    return ctx.settings.data_dir / "demo-keys.json"


def seed(ctx: ServiceContext) -> dict[str, str]:
    """Create whatever part of the demo data set is missing; return its API keys.

    Keys are stored hashed in the database; for the demo only, the clear keys are also kept
    in ``<data_dir>/demo-keys.json`` (mode 0600) so that ``make run`` can show them again.
    A second run creates nothing and returns the same keys. Each piece is checked on its
    own, so a run that was interrupted half-way is completed by the next one, and a keys
    file that does not match the database (another database, revoked keys) is replaced.
    """
    _seed_data(ctx)
    _seed_users(ctx)
    path = keys_file(ctx)
    if path.exists():
        tighten_file(path)  # an older version may have left it readable by others
        try:
            existing: dict[str, str] = json.loads(path.read_text())
        except ValueError:
            existing = {}
        if _keys_work(ctx, existing):
            return existing
    keys = _issue_keys(ctx)
    private_dir(path.parent)
    with open_private_text(path) as handle:
        json.dump(keys, handle, indent=2)
    return keys


def _seed_data(ctx: ServiceContext) -> None:
    for demo in DEMO_MERCHANTS:
        mid = demo.merchant.merchant_id
        setup = terminal_queries.merchant_setup(ctx, SYSTEM, mid)
        has_merchant, has_account = setup.exists, setup.has_account
        missing = [t for t in demo.terminals if not has_merchant
                   or not terminal_queries.terminal_exists(ctx, SYSTEM, mid, t.terminal_id)]
        if not has_merchant:
            merchants.create_merchant(ctx, SYSTEM, demo.merchant)
        if not has_account:
            merchants.add_settlement_account(ctx, SYSTEM, mid, demo.account)
        for terminal in missing:
            merchants.add_terminal(ctx, SYSTEM, mid, terminal)


def _seed_users(ctx: ServiceContext) -> None:
    known = {u.username for u in users.list_users(ctx, SYSTEM)}
    for new in DEMO_USERS:
        if new.username not in known:
            users.create_user(ctx, SYSTEM, new)


def _key_names() -> list[str]:
    names = ["operator"]
    for demo in DEMO_MERCHANTS:
        mid = demo.merchant.merchant_id
        names.append(f"merchant:{mid}")
        names.extend(f"terminal:{mid}:{t.terminal_id}" for t in demo.terminals)
    return names


def _keys_work(ctx: ServiceContext, keys: dict[str, str]) -> bool:
    """True when ``keys`` has every demo key and each one authenticates here."""
    if not isinstance(keys, dict) or sorted(keys) != sorted(_key_names()):
        return False
    try:
        for key in keys.values():
            apikeys.authenticate(ctx, key, origin="demo")
    except AutosettleError:
        return False
    return True


def _issue_keys(ctx: ServiceContext) -> dict[str, str]:
    keys = {"operator": apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR,
                                               "demo operator").key}
    for demo in DEMO_MERCHANTS:
        mid = demo.merchant.merchant_id
        keys[f"merchant:{mid}"] = apikeys.create_api_key(
            ctx, SYSTEM, Role.MERCHANT, f"demo {demo.merchant.short_name}", mid).key
        for terminal in demo.terminals:
            keys[f"terminal:{mid}:{terminal.terminal_id}"] = apikeys.create_api_key(
                ctx, SYSTEM, Role.TERMINAL, f"demo {terminal.terminal_id}", mid,
                terminal.terminal_id).key
    return keys
