"""The platform's one price source: VM prices per region with a date (issue 16).

The file is ``gitops/infrastructure/controllers/base/monitoring/pricing/vm-prices.yaml``: kustomize builds
OpenCost's custom pricing ConfigMap from the ``opencost-custom-pricing.env`` generated next to it (this
module, ``--write``), and the simulator, the benchmark and ``platformctl scaling status`` price node-hours
with it. Nothing else states a price.

    .venv/bin/python -m shared.services.cost_prices            # print the OpenCost rates and their fit
    .venv/bin/python -m shared.services.cost_prices --write    # regenerate opencost-custom-pricing.env
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP_ROOT = Path(__file__).resolve().parents[2]
PRICING_DIR = APP_ROOT / "gitops" / "infrastructure" / "controllers" / "base" / "monitoring" / "pricing"
PRICE_FILE = PRICING_DIR / "vm-prices.yaml"
OPENCOST_ENV = PRICING_DIR / "opencost-custom-pricing.env"

#: OpenCost reads the values of its pricing ConfigMap as prices per MONTH and divides them by 730 hours
#: (opencost pkg/cloud/provider/providerconfig.go, ``UpdateFromMap``).
HOURS_PER_MONTH = 730
#: OpenCost prices by resource (vCPU-hour, GiB-hour, GPU-hour), Azure by VM size: a VM's price is split
#: between its vCPUs and memory in the ratio of OpenCost's own default rates (one vCPU-hour costs as much
#: as 0.021811 / 0.002923 GiB-hours: ``DefaultPricing`` in the same file). GPUs take the rest.
CPU_TO_GIB_RATIO = 0.021811 / 0.002923


class PriceMissing(KeyError):
    """No price for a VM size in a region: add it to the price file."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "price missing"


@dataclass(frozen=True)
class VmPrice:
    vm_size: str
    hourly: float  # USD per node-hour, Linux pay-as-you-go
    vcpus: int
    memory_gib: float
    gpus: int
    estimate: bool
    basis: str = ""


@dataclass(frozen=True)
class PriceBook:
    as_of: dt.date
    currency: str
    regions: dict[str, dict[str, VmPrice]]

    def price(self, region: str, vm_size: str) -> VmPrice:
        try:
            return self.regions[region][vm_size]
        except KeyError:
            raise PriceMissing(f"no price for {vm_size} in {region} in {PRICE_FILE.name} (as of "
                               f"{self.as_of}): add it there") from None

    def hourly(self, region: str, vm_size: str) -> float:
        return self.price(region, vm_size).hourly

    def cost(self, region: str, vm_size: str, node_hours: float) -> float:
        return node_hours * self.hourly(region, vm_size)

    @property
    def has_estimates(self) -> bool:
        return any(p.estimate for sizes in self.regions.values() for p in sizes.values())

    def label(self) -> str:
        """How a report names its prices: currency, date, and whether any is an estimate."""
        return f"{self.currency} list prices as of {self.as_of}" + (" (estimates)" if self.has_estimates else "")


def parse(raw: Any, *, source: str = "vm-prices.yaml") -> PriceBook:
    """Validate the file's content; raise ValueError naming every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping")
    as_of = raw.get("as_of")
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            problems.append(f"as_of: not a date: {as_of!r}")
    if not isinstance(as_of, dt.date):
        problems.append("as_of: required (YYYY-MM-DD: when the prices were read)")
    currency = raw.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        problems.append("currency: required, an ISO 4217 code such as USD")
    regions: dict[str, dict[str, VmPrice]] = {}
    for region, sizes in (raw.get("regions") or {}).items():
        regions[region] = {}
        for size, entry in (sizes or {}).items():
            where = f"regions.{region}.{size}"
            entry = entry if isinstance(entry, dict) else {}
            hourly, vcpus, mem, gpus = (entry.get(k) for k in ("hourly", "vcpus", "memory_gib", "gpus"))
            if not isinstance(hourly, int | float) or isinstance(hourly, bool) or hourly <= 0:
                problems.append(f"{where}.hourly: a positive number (USD per node-hour)")
            if not isinstance(vcpus, int) or vcpus <= 0:
                problems.append(f"{where}.vcpus: a positive integer")
            if not isinstance(mem, int | float) or mem <= 0:
                problems.append(f"{where}.memory_gib: a positive number")
            if not isinstance(gpus, int) or gpus < 0:
                problems.append(f"{where}.gpus: an integer, 0 or more")
            if not isinstance(entry.get("estimate"), bool):
                problems.append(f"{where}.estimate: true or false (false only for a price read from the list)")
            if not any(p.startswith(where) for p in problems):
                regions[region][size] = VmPrice(size, float(hourly), vcpus, float(mem), gpus,
                                                entry["estimate"], str(entry.get("basis", "")))
    if not regions:
        problems.append("regions: at least one region with VM sizes")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return PriceBook(as_of, currency, regions)  # type: ignore[arg-type]


def load(path: Path | str | None = None) -> PriceBook:
    import yaml

    path = Path(path or PRICE_FILE)
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), source=str(path))


def pool_price(env: str, pool: str, *, book: PriceBook | None = None) -> tuple[str, float]:
    """(VM size, USD per node-hour) of a GPU pool of an environment, as platform.yaml declares it."""
    from shared.platform import load_environment

    platform = load_environment(env)
    gpu_pool = platform.gpu_pool(pool)
    return gpu_pool.vm_size, (book or load()).hourly(platform.location, gpu_pool.vm_size)


# -- OpenCost's custom pricing, derived ------------------------------------------------------------

@dataclass(frozen=True)
class OpenCostRates:
    """Per-resource hourly rates OpenCost prices nodes with, fitted to the VM prices of one region."""

    region: str
    cpu: float  # per vCPU-hour
    ram: float  # per GiB-hour
    gpu: float  # per GPU-hour
    #: VM size -> the node price OpenCost will compute / the list price (1.0 = exact)
    fit: dict[str, float]

    def node_hourly(self, p: VmPrice) -> float:
        return p.vcpus * self.cpu + p.memory_gib * self.ram + p.gpus * self.gpu


def opencost_rates(book: PriceBook, region: str) -> OpenCostRates:
    """CPU and memory rates from the sizes without GPUs (their total price over their vCPU-equivalents),
    one GPU rate from the sizes with GPUs (their price less vCPUs and memory at those rates, over their
    GPUs). OpenCost has a single GPU rate, so GPU sizes of different price per GPU are priced at the
    average; ``fit`` says how far each size lands from its list price."""
    sizes = list(book.regions[region].values())
    general = [p for p in sizes if p.gpus == 0]
    gpu_sizes = [p for p in sizes if p.gpus > 0]
    if not general:
        raise ValueError(f"{region}: no VM size without GPUs to derive the vCPU and memory rates from")
    cpu = sum(p.hourly for p in general) / sum(p.vcpus + p.memory_gib / CPU_TO_GIB_RATIO for p in general)
    ram = cpu / CPU_TO_GIB_RATIO
    gpu = 0.0
    if gpu_sizes:
        rest = sum(p.hourly - p.vcpus * cpu - p.memory_gib * ram for p in gpu_sizes)
        gpu = max(rest, 0.0) / sum(p.gpus for p in gpu_sizes)
    rates = OpenCostRates(region, cpu, ram, gpu, {})
    fit = {p.vm_size: rates.node_hourly(p) / p.hourly for p in sizes}
    return OpenCostRates(region, cpu, ram, gpu, fit)


def render_opencost_env(book: PriceBook, region: str) -> str:
    """The kustomize env file of OpenCost's pricing ConfigMap: only CustomPricing fields (OpenCost rejects
    the whole update on an unknown key), prices per month."""
    rates = opencost_rates(book, region)
    lines = [
        "# GENERATED from vm-prices.yaml by `.venv/bin/python -m shared.services.cost_prices --write`: do not edit.",
        f"# OpenCost custom pricing for {region}, {book.label()}. Values are per MONTH ({HOURS_PER_MONTH} h):",
        "# OpenCost divides them by 730. Per hour: "
        f"vCPU {rates.cpu:.6f}, GiB {rates.ram:.6f}, GPU {rates.gpu:.4f}.",
        "# Node price OpenCost computes / list price, per size:",
        *(f"#   {size}: {ratio:.3f}" for size, ratio in sorted(rates.fit.items())),
        "provider=custom",
        f"description=Azure {region} VM list prices as of {book.as_of} (gitops pricing/vm-prices.yaml)",
        f"currencyCode={book.currency}",
        f"CPU={rates.cpu * HOURS_PER_MONTH:.4f}",
        f"RAM={rates.ram * HOURS_PER_MONTH:.4f}",
        f"GPU={rates.gpu * HOURS_PER_MONTH:.4f}",
    ]
    return "\n".join(lines) + "\n"


#: The region OpenCost's rates are fitted for: every environment runs there (platform.yaml ``location``;
#: tests/unit/test_cost_prices.py checks it). A second region needs a per-environment ConfigMap patch.
OPENCOST_REGION = "uaenorth"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    book = load()
    text = render_opencost_env(book, OPENCOST_REGION)
    if "--write" in argv:
        OPENCOST_ENV.write_text(text, encoding="utf-8")
        print(f"wrote {OPENCOST_ENV.relative_to(APP_ROOT)}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
