"""A seeded AI-lineage workload for the side-by-side benchmark (``benchmarks.run``), with a scale factor.

    python -m benchmarks.workload [--scale 1] [--out DIR]      # writes the files below, prints the shape

Scale 1 is about 50,000 relationships and scale 20 about 1,000,000: the data
grows by adding *organisational units*; each unit has the same shape, so the
work of one check stays the same while the store grows.

One unit (``o{k}``; 17 units per scale step):

- **Teams**: a binary tree of 31 teams, 4 nesting levels deep
  (``team:o{k}t0`` is the root; ``team:o{k}t{i}#member@team:o{k}t{2i+1}#member``).
  125 users, each a member of one leaf team (level 4); one in ten is also a
  direct member of a level-2 team.
- **Datasets** (``access = owner + viewer``):
  - 10 lineage chains of 9 to 16 datasets (``derived_from`` the previous one;
    a chain's dataset *at depth d* has d datasets upstream on its main line),
    and 2 deep chains of 33 datasets (depth 32 at the tip). 3 in 10 chain
    datasets also derive from one of 12 *reference* datasets (fan-in 2).
  - 160 *raw* datasets and 2 *join* datasets per unit, each join derived from
    128 raw ones (wide fan-in).
  - Every dataset has an owner (a user of the unit) and is viewable by the
    unit's root team (so by every user, through up to 4 nested teams), except:
    one chain in three has one *restricted* dataset viewable only by a level-2
    team (a quarter of the unit), and some datasets add a level-1 team or a
    direct user viewer. Datasets with nothing upstream carry ``root@user:*``
    (the base case of the ``.all()`` recursion).
- **Models**: 8, trained on 1-4 chain tips or joins, operated by the root team.
- **Outputs**: 250, produced by a model, some with an input dataset, requested
  by 1-2 users.
- **Labels and clearances** (Headwater only): raw, reference and chain-root
  datasets carry sensitivity labels (levels and categories); clearances are
  personal (``sensitivity:confidential#cleared@user:...``, restricted ones with
  an expiration), plus a few team clearances.

Two schemas describe the same objects. The Headwater schema is the ai-lineage
policy (``examples/ai-lineage/policy.zed``) with extra permissions; the SpiceDB
schema is its SpiceDB-expressible part: no classification, ``lineage`` relations
are plain relations, lineage is followed with ``.all()`` arrows, and
relationships on labels and clearances are left out. The permissions compared
between the engines (``access``, ``access_lineage``, ``use_lineage``,
``view_lineage``) are written identically in both, and read only relations both
engines hold, so both get identical work.

Every check of every scenario carries the expected answer, computed here by a
small independent evaluator over the relationships (``Reference``), so a wrong
answer is caught even when SpiceDB is not available.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = ["HEADWATER_SCHEMA", "SPICEDB_SCHEMA", "Check", "Reference", "Shape", "Workload", "generate"]

# The ai-lineage policy (examples/ai-lineage/policy.zed) plus the permissions the benchmark needs; the
# policy's own permissions (read, use, view) are kept verbatim.
HEADWATER_SCHEMA = """\
use expiration

/** Levels are ordered low to high; categories are compartments. */
classification sensitivity {
    levels public < internal < confidential < restricted
    categories pii, phi, financial
    cleared: user | team#member | user with expiration
}

definition user {}

definition team {
    relation member: user | team#member
}

definition dataset {
    relation owner: user
    relation steward: user
    relation viewer: user | team#member
    relation label: sensitivity
    /** Marks a dataset with nothing upstream: the base case of access_lineage. */
    relation root: user:*
    lineage derived_from: dataset
    declassify scrubbed: sensitivity by steward
    permission read = (owner + viewer) & cleared
    permission access = owner + viewer
    /** Lineage as SpiceDB can say it: access here and on everything upstream. */
    permission access_lineage = access & (root + derived_from.all(access_lineage))
    /** The same question asked the Headwater way. */
    permission access_upstream = access & upstream(access)
    /** With sensitivity: readable and cleared here and on everything upstream. */
    permission read_upstream = read & upstream(read)
}

definition model {
    relation operator: user | team#member
    lineage trained_on: dataset
    permission use = operator & cleared & upstream(read)
    permission use_lineage = operator & trained_on.all(access_lineage)
}

definition output {
    relation requester: user
    lineage produced_by: model
    lineage input: dataset
    permission view = requester & cleared
    permission view_lineage = requester & produced_by.all(use_lineage)
}
"""

# The SpiceDB-expressible part: same definitions and compared permissions, no classification.
SPICEDB_SCHEMA = """\
definition user {}

definition team {
    relation member: user | team#member
}

definition dataset {
    relation owner: user
    relation steward: user
    relation viewer: user | team#member
    /** Marks a dataset with nothing upstream: the base case of access_lineage. */
    relation root: user:*
    relation derived_from: dataset
    permission access = owner + viewer
    permission access_lineage = access & (root + derived_from.all(access_lineage))
}

definition model {
    relation operator: user | team#member
    relation trained_on: dataset
    permission use_lineage = operator & trained_on.all(access_lineage)
}

definition output {
    relation requester: user
    relation produced_by: model
    relation input: dataset
    permission view_lineage = requester & produced_by.all(use_lineage)
}
"""

LEVELS = ("public", "internal", "confidential", "restricted")
CATEGORIES = ("pii", "phi", "financial")
FAR_FUTURE = "2099-01-01T00:00:00Z"
BULK_SIZE = 1000  # items per bulk check


class Check(NamedTuple):
    """One check of a scenario and its expected answer."""

    resource: str
    permission: str
    subject: str
    expected: bool


@dataclass(frozen=True)
class Shape:
    """The size of one organisational unit (the workload is ``units_per_scale * scale`` of them)."""

    units_per_scale: int = 17
    team_depth: int = 4  # nesting levels below the root team (binary tree)
    users: int = 125
    chains: int = 10  # chains of 9..16 datasets (depth 8..15 at the tip)
    chain_lengths: tuple[int, int] = (9, 16)
    deep_chains: int = 2  # chains of 33 datasets (depth 32 at the tip)
    deep_length: int = 33
    references: int = 12  # root datasets used as side inputs of chain datasets
    side_input_rate: float = 0.3
    restricted_chain_rate: float = 0.33  # chains with one dataset viewable by a level-2 team only
    raw: int = 160
    joins: int = 2
    join_fan_in: int = 128
    models: int = 8
    outputs: int = 250


@dataclass
class Workload:
    """The generated workload: schemas, relationships (Headwater: all; SpiceDB: the expressible part), checks."""

    scale: float
    seed: int
    shape: Shape
    relationships: list[str]
    spicedb_relationships: list[str]
    scenarios: dict[str, list[Check]]
    lookup_subjects: list[str]  # users for LookupResources
    write_relationships: list[str]  # fresh relationships for the write-throughput scenario
    counts: dict[str, int] = field(default_factory=dict)
    headwater_schema: str = HEADWATER_SCHEMA
    spicedb_schema: str = SPICEDB_SCHEMA

    def write_files(self, directory: Path) -> dict[str, Path]:
        """Write both schemas and both relationship lists (one relationship per line); return the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "headwater_schema": directory / "headwater.zed",
            "spicedb_schema": directory / "spicedb.zed",
            "headwater_relationships": directory / "headwater.relationships",
            "spicedb_relationships": directory / "spicedb.relationships",
        }
        paths["headwater_schema"].write_text(self.headwater_schema)
        paths["spicedb_schema"].write_text(self.spicedb_schema)
        paths["headwater_relationships"].write_text("\n".join(self.relationships) + "\n")
        paths["spicedb_relationships"].write_text("\n".join(self.spicedb_relationships) + "\n")
        return paths


def is_headwater_only(rel: str) -> bool:
    """Labels and clearances: relationships SpiceDB's schema has no place for."""
    return rel.startswith("sensitivity:") or "#label@" in rel


def _team(unit: int, i: int) -> str:
    return f"team:o{unit}t{i}"


class _UnitBuilder:
    """Builds one unit's relationships and remembers what the scenarios need."""

    def __init__(self, unit: int, shape: Shape, rng: random.Random) -> None:
        self.k = unit
        self.shape = shape
        self.rng = rng
        self.rels: list[str] = []
        n_teams = 2 ** (shape.team_depth + 1) - 1
        self.leaf_teams = list(range(2 ** shape.team_depth - 1, n_teams))
        self.users = [f"user:o{unit}p{i}" for i in range(shape.users)]
        self.leaf_only_users: list[str] = []
        self.datasets: list[str] = []
        self.owner: dict[str, str] = {}
        self.root_viewed: set[str] = set()  # datasets viewable by the root team and with no direct user viewer
        self.direct_viewers: dict[str, set[str]] = {}
        self.depth: dict[str, int] = {}  # chain datasets: position in the chain
        self.joins: list[str] = []
        self.tips: list[str] = []
        self.models: list[str] = []
        self.outputs: list[str] = []
        self.chain_roots: list[str] = []

    def add(self, rel: str) -> None:
        self.rels.append(rel)

    def build(self) -> None:
        s, rng, k = self.shape, self.rng, self.k
        n_teams = 2 ** (s.team_depth + 1) - 1
        for i in range(1, n_teams):
            self.add(f"{_team(k, (i - 1) // 2)}#member@{_team(k, i)}#member")
        level2 = [i for i in range(n_teams) if 3 <= i <= 6]
        for j, u in enumerate(self.users):
            self.add(f"{_team(k, self.leaf_teams[j % len(self.leaf_teams)])}#member@{u}")
            if rng.random() < 0.1:
                self.add(f"{_team(k, rng.choice(level2))}#member@{u}")
            else:
                self.leaf_only_users.append(u)
        refs = [self.dataset(f"dataset:o{k}ref{i}", root=True, labels=(0.3, 0.1, 0.0, 0.05)) for i in range(s.references)]
        for c in range(s.chains + s.deep_chains):
            length = s.deep_length if c >= s.chains else rng.randint(*s.chain_lengths)
            restricted = rng.randrange(length) if rng.random() < s.restricted_chain_rate else None
            prev = None
            for pos in range(length):
                name = f"dataset:o{k}c{c}n{pos}"
                self.dataset(name, root=prev is None, restricted=pos == restricted,
                             labels=(0.3, 0.1, 0.02, 0.05) if prev is None else (0.03, 0.0, 0.0, 0.0))
                self.depth[name] = pos
                if prev is None:
                    self.chain_roots.append(name)
                else:
                    self.add(f"{name}#derived_from@{prev}")
                    if rng.random() < s.side_input_rate:
                        self.add(f"{name}#derived_from@{rng.choice(refs)}")
                prev = name
            self.tips.append(prev)  # type: ignore[arg-type]
        raws = [self.dataset(f"dataset:o{k}raw{i}", root=True, labels=(0.4, 0.2, 0.03, 0.15))
                for i in range(s.raw)]
        for j in range(s.joins):
            name = self.dataset(f"dataset:o{k}join{j}", root=False, labels=(0.0, 0.0, 0.0, 0.0))
            for r in rng.sample(raws, min(s.join_fan_in, len(raws))):
                self.add(f"{name}#derived_from@{r}")
            self.joins.append(name)
        for m in range(s.models):
            name = f"model:o{k}m{m}"
            self.add(f"{name}#operator@{_team(k, 0)}#member")
            for d in rng.sample(self.tips + self.joins, rng.randint(1, 4)):
                self.add(f"{name}#trained_on@{d}")
            self.models.append(name)
        for o in range(s.outputs):
            name = f"output:o{k}x{o}"
            self.add(f"{name}#produced_by@{rng.choice(self.models)}")
            if rng.random() < 0.4:
                self.add(f"{name}#input@{rng.choice(self.datasets)}")
            for u in rng.sample(self.users, rng.randint(1, 2)):
                self.add(f"{name}#requester@{u}")
            self.outputs.append(name)
        self.clearances()

    def dataset(self, name: str, *, root: bool, labels: tuple[float, float, float, float],
                restricted: bool = False) -> str:
        """Owner, viewers, labels (rates of internal, confidential, restricted, and of each category)."""
        rng, k = self.rng, self.k
        owner = rng.choice(self.users)
        self.owner[name] = owner
        self.add(f"{name}#owner@{owner}")
        if restricted:
            self.add(f"{name}#viewer@{_team(k, rng.randint(3, 6))}#member")
        else:
            self.add(f"{name}#viewer@{_team(k, 0)}#member")
            if rng.random() < 0.1:
                self.add(f"{name}#viewer@{_team(k, rng.randint(1, 2))}#member")
            if rng.random() < 0.1:
                u = rng.choice(self.users)
                self.add(f"{name}#viewer@{u}")
                self.direct_viewers.setdefault(name, set()).add(u)
            else:
                self.root_viewed.add(name)
        if rng.random() < 0.1:
            self.add(f"{name}#steward@{rng.choice(self.users)}")
        if root:
            self.add(f"{name}#root@user:*")
        p_internal, p_conf, p_restricted, p_category = labels
        x = rng.random()
        if x < p_restricted:
            self.add(f"{name}#label@sensitivity:restricted")
        elif x < p_restricted + p_conf:
            self.add(f"{name}#label@sensitivity:confidential")
        elif x < p_restricted + p_conf + p_internal:
            self.add(f"{name}#label@sensitivity:internal")
        for c, w in zip(CATEGORIES, (1.0, 0.2, 0.6)):
            if rng.random() < p_category * w:
                self.add(f"{name}#label@sensitivity:{c}")
        self.datasets.append(name)
        return name

    def clearances(self) -> None:
        rng = self.rng
        for u in self.users:
            if rng.random() < 0.95:
                self.add(f"sensitivity:internal#cleared@{u}")
            if rng.random() < 0.5:
                self.add(f"sensitivity:confidential#cleared@{u}")
            if rng.random() < 0.03:
                self.add(f"sensitivity:restricted#cleared@{u}[expiration:{FAR_FUTURE}]")
            for c, p in zip(CATEGORIES, (0.4, 0.1, 0.3)):
                if rng.random() < p:
                    self.add(f"sensitivity:{c}#cleared@{u}")


class Reference:
    """An independent, obviously-correct evaluator of this workload's permissions (no caching subtleties).

    It reads the relationship strings only, so it also checks that the generator emitted what it meant.
    Expiration: every expiring relationship here expires in 2099, so it counts as present.
    """

    def __init__(self, relationships: Iterable[str]) -> None:
        self.subjects: dict[tuple[str, str], list[str]] = {}
        self._direct: dict[tuple[str, str], set[str]] = {}
        self._usersets: dict[tuple[str, str], list[str]] = {}
        for rel in relationships:
            resource, _, subject = rel.partition("@")
            obj, _, relation = resource.partition("#")
            subject = subject.split("[", 1)[0]
            self.subjects.setdefault((obj, relation), []).append(subject)
            if "#" in subject:
                self._usersets.setdefault((obj, relation), []).append(subject.split("#")[0])
            else:
                self._direct.setdefault((obj, relation), set()).add(subject)
        self._members: dict[str, set[str]] = {}
        self._labels: dict[str, frozenset[str]] = {}
        self._upstream: dict[str, frozenset[str]] = {}
        self._memo: dict[tuple[str, str, str], bool] = {}

    def _get(self, obj: str, relation: str) -> list[str]:
        return self.subjects.get((obj, relation), [])

    def members(self, team: str) -> set[str]:
        """Every user in ``team`` (through nested teams)."""
        hit = self._members.get(team)
        if hit is None:
            hit = set()
            for s in self._get(team, "member"):
                if "#" in s:
                    hit |= self.members(s.split("#")[0])
                else:
                    hit.add(s)
            self._members[team] = hit
        return hit

    def has(self, obj: str, relation: str, user: str) -> bool:
        direct = self._direct.get((obj, relation), ())
        if user in direct or user.split(":")[0] + ":*" in direct:
            return True
        return any(user in self.members(team) for team in self._usersets.get((obj, relation), ()))

    def upstream(self, obj: str) -> frozenset[str]:
        hit = self._upstream.get(obj)
        if hit is None:
            out: set[str] = set()
            for rel in ("derived_from", "trained_on", "produced_by", "input"):
                for s in self._get(obj, rel):
                    out.add(s)
                    out |= self.upstream(s)
            hit = self._upstream[obj] = frozenset(out)
        return hit

    def labels(self, obj: str) -> frozenset[str]:
        hit = self._labels.get(obj)
        if hit is None:
            out = {s.split(":")[1] for s in self._get(obj, "label")}
            for rel in ("derived_from", "trained_on", "produced_by", "input"):
                for s in self._get(obj, rel):
                    out |= self.labels(s)
            hit = self._labels[obj] = frozenset(out)
        return hit

    def cleared(self, obj: str, user: str) -> bool:
        labels = self.labels(obj)
        levels = [LEVELS.index(v) for v in labels if v in LEVELS]
        top = max(levels, default=0)
        if top > 0 and not any(self.has(f"sensitivity:{v}", "cleared", user) for v in LEVELS[top:]):
            return False
        return all(self.has(f"sensitivity:{c}", "cleared", user) for c in labels if c in CATEGORIES)

    def check(self, obj: str, permission: str, user: str) -> bool:
        key = (obj, permission, user)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._check(obj, permission, user)
        return hit

    def _check(self, obj: str, p: str, user: str) -> bool:
        if p in ("owner", "viewer", "steward", "operator", "requester", "member"):
            return self.has(obj, p, user)
        if p == "access":
            return self.has(obj, "owner", user) or self.has(obj, "viewer", user)
        if p == "read":
            return self.check(obj, "access", user) and self.cleared(obj, user)
        if p == "access_lineage":
            parents = self._get(obj, "derived_from")
            return self.check(obj, "access", user) and (
                self.has(obj, "root", user) or (bool(parents) and all(self.check(d, p, user) for d in parents)))
        if p in ("access_upstream", "read_upstream"):
            base = "access" if p == "access_upstream" else "read"
            return self.check(obj, base, user) and all(self.check(d, base, user) for d in self.upstream(obj)
                                                       if d.startswith("dataset:"))
        if p == "use_lineage":
            ds = self._get(obj, "trained_on")
            return self.has(obj, "operator", user) and bool(ds) and all(self.check(d, "access_lineage", user)
                                                                        for d in ds)
        if p == "use":
            return (self.has(obj, "operator", user) and self.cleared(obj, user)
                    and all(self.check(d, "read", user) for d in self.upstream(obj) if d.startswith("dataset:")))
        if p == "view_lineage":
            ms = self._get(obj, "produced_by")
            return self.has(obj, "requester", user) and bool(ms) and all(self.check(m, "use_lineage", user)
                                                                         for m in ms)
        if p == "view":
            return self.has(obj, "requester", user) and self.cleared(obj, user)
        raise ValueError(f"the reference evaluator does not know permission {p!r}")


def generate(scale: float = 1, seed: int = 42, shape: Shape | None = None, checks_per_scenario: int = 4000) -> Workload:
    """The seeded workload at ``scale`` (same scale and seed: the same relationships and checks, in order)."""
    shape = shape or Shape()
    rng = random.Random(seed)
    n_units = max(1, round(shape.units_per_scale * scale))
    units = []
    for k in range(n_units):
        b = _UnitBuilder(k, shape, rng)
        b.build()
        units.append(b)
    # A few team clearances (a constant number, whatever the scale).
    shared = [f"sensitivity:pii#cleared@{_team(k, 1)}#member" for k in range(min(4, n_units))]
    rels = list(dict.fromkeys(r for b in units for r in b.rels))
    rels += [r for r in shared if r not in set(rels)]
    ref = Reference(rels)

    def sample(make: Callable[[_UnitBuilder], tuple[str, str, str]], n: int) -> list[Check]:
        out = []
        for _ in range(n):
            b = rng.choice(units)
            resource, permission, subject = make(b)
            out.append(Check(resource, permission, subject, ref.check(resource, permission, subject)))
        return out

    n = checks_per_scenario

    def at_depth(b: _UnitBuilder, d: int) -> str:
        return rng.choice([ds for ds, pos in b.depth.items() if pos == d])

    def nested(b: _UnitBuilder) -> tuple[str, str, str]:
        while True:
            ds = rng.choice(sorted(b.root_viewed))
            u = rng.choice(b.leaf_only_users)
            if b.owner[ds] != u:
                return ds, "access", u

    # lineage scenarios share resources and users, so the .all() and upstream() forms ask the same questions
    d8 = [(at_depth(b, 8), rng.choice(b.users)) for b in (rng.choice(units) for _ in range(n))]
    d32 = [(at_depth(b, 32), rng.choice(b.users)) for b in (rng.choice(units) for _ in range(n))]

    def fixed(pairs: list[tuple[str, str]], permission: str) -> list[Check]:
        return [Check(r, permission, u, ref.check(r, permission, u)) for r, u in pairs]

    owned = [(ds, b.owner[ds]) for b in (rng.choice(units) for _ in range(n)) for ds in [rng.choice(b.datasets)]]
    scenarios = {
        "direct_relation": fixed(owned, "owner"),
        "direct": fixed(owned, "access"),
        "nested_team_d4": sample(nested, n),
        "lineage_all_d8": fixed(d8, "access_lineage"),
        "lineage_all_d32": fixed(d32, "access_lineage"),
        "lineage_upstream_d8": fixed(d8, "read_upstream"),
        "lineage_upstream_d32": fixed(d32, "read_upstream"),
        "upstream_access_d8": fixed(d8, "access_upstream"),
        "wide_fan_in": sample(lambda b: (rng.choice(b.joins), "access_lineage", rng.choice(b.users)), n),
    }
    # bulk: a list page of 1,000 datasets filtered for one user (all of the user's unit, the rest from others)
    every = [ds for b in units for ds in b.datasets]
    bulk: list[Check] = []
    while len(bulk) < n:
        b = rng.choice(units)
        u = rng.choice(b.users)
        own = b.datasets[:BULK_SIZE]
        others = [ds for ds in rng.sample(every, min(len(every), 2 * BULK_SIZE)) if ds not in set(own)]
        page = own + others[:BULK_SIZE - len(own)]
        rng.shuffle(page)
        bulk += [Check(ds, "access", u, ref.check(ds, "access", u)) for ds in page]
    scenarios["bulk_list"] = bulk
    lookup_subjects = [rng.choice(b.users) for b in (rng.choice(units) for _ in range(400))]
    writes = [f"dataset:o{rng.randrange(n_units)}w{i}#viewer@user:o{rng.randrange(n_units)}p{rng.randrange(shape.users)}"
              for i in range(2000)]
    spicedb = [r for r in rels if not is_headwater_only(r)]
    counts = {
        "units": n_units,
        "relationships": len(rels),
        "spicedb_relationships": len(spicedb),
        "labels_and_clearances": len(rels) - len(spicedb),
        "users": n_units * shape.users,
        "teams": n_units * (2 ** (shape.team_depth + 1) - 1),
        "datasets": sum(len(b.datasets) for b in units),
        "models": sum(len(b.models) for b in units),
        "outputs": sum(len(b.outputs) for b in units),
    }
    return Workload(scale, seed, shape, rels, spicedb, scenarios, lookup_subjects, writes, counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, help="write the schemas and relationship files here")
    args = ap.parse_args()
    w = generate(args.scale, args.seed)
    for k, v in w.counts.items():
        print(f"{k:<24}{v:>10,}")
    for name, checks in w.scenarios.items():
        allowed = sum(c.expected for c in checks)
        print(f"scenario {name:<22}{len(checks):>6} checks, {allowed / len(checks):.0%} allowed")
    if args.out:
        for k, p in w.write_files(args.out).items():
            print(f"{k}: {p}")


if __name__ == "__main__":
    main()
