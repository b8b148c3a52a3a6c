"""Write the platform and one tenant's CloudFormation templates to ``cdk.out/`` for humans.

    python scripts/synth.py --tier premium [--tenant-id ten_demo] [--out cdk.out]

The control plane does not use this script: it calls ``cdk.synthesis.synthesize_tenant_template``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Before aws_cdk is imported: the project's jsii cache, and no Node 20 end-of-life banner.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(REPO_ROOT / "var" / "jsii-cache"))
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from cdk.config import DEFAULT_COST_CENTER, TIERS, load_tier_template  # noqa: E402
from cdk.synthesis import synthesize_to_directory  # noqa: E402
from cdk.tenant_stack import TenantStackError  # noqa: E402

DEMO_CONTACT = "fraudrail-ops@example.com"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Synthesize Fraudrail CloudFormation templates.")
    parser.add_argument("--tier", required=True, choices=TIERS)
    parser.add_argument("--tenant-id", default="ten_demo")
    parser.add_argument("--out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--region", help="default: the tier's first allowed region")
    parser.add_argument("--budget-amount", help="default: the tier's budget cap")
    parser.add_argument("--contact-email", help=f"default for tiers that need one: {DEMO_CONTACT}")
    parser.add_argument("--cost-center", default=DEFAULT_COST_CENTER)
    parser.add_argument("--no-platform", action="store_true", help="write only the tenant stack")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Synthesize; print each template's path. Exit status 2 when the tier refuses the inputs."""
    args = parse_args(argv)
    template = load_tier_template(args.tier)
    contact = args.contact_email
    if contact is None and template.get("requires_notification_contact"):
        contact = DEMO_CONTACT
    try:
        paths = synthesize_to_directory(
            args.out,
            tier=args.tier,
            tenant_id=args.tenant_id,
            region=args.region or template["allowed_regions"][0],
            budget_amount=args.budget_amount,
            contacts_email=contact,
            cost_center=args.cost_center,
            include_platform=not args.no_platform,
        )
    except TenantStackError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
