"""A DataFrame's physical plan as a tree of nodes read from Spark's own objects (through
py4j), not from `explain()`'s text: node names, each shuffle's partitioning, a join's
keys, type and build side. What Spark only offers as text (a filter's condition, the
filters pushed into a scan) is read from the node it belongs to.

The plan is the initial physical plan (AQE's, before a stage runs): AQE may later coalesce
partitions or change a join's strategy, never add shuffles.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _seq(scala_seq) -> list:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


@dataclass
class Node:
    name: str
    java: object = field(repr=False)
    children: list[Node] = field(default_factory=list, repr=False)

    @property
    def kind(self) -> str:
        """The node's class: FileSourceScanExec, ShuffleExchangeExec, ..."""
        return self.java.getClass().getSimpleName()

    def walk(self) -> list[Node]:
        """Every node, children before their parent (the scan first, as `explain` numbers them)."""
        return [node for child in self.children for node in child.walk()] + [self]

    def shuffle(self) -> tuple[str, list[str]]:
        """An Exchange's partitioning kind and the column names it hashes on."""
        partitioning = self.java.outputPartitioning()
        kind = partitioning.getClass().getSimpleName()
        columns = [e.name() for e in _seq(partitioning.expressions())] if kind == "HashPartitioning" else []
        return kind, columns

    def aggregate_modes(self) -> set[str]:
        """A HashAggregate's modes (Partial, Final, ...), one per aggregate function."""
        return {e.mode().toString() for e in _seq(self.java.aggregateExpressions())}

    def aggregate_functions(self) -> list[str]:
        """A HashAggregate's aggregate functions, as SQL: `sum(x)`, `count(1)`, ..."""
        return [e.aggregateFunction().sql() for e in _seq(self.java.aggregateExpressions())]

    def shuffle_origin(self) -> str:
        return self.java.shuffleOrigin().toString()

    def join(self) -> dict:
        """A hash join's keys (column names), type, build side and condition (as SQL)."""
        condition = self.java.condition()
        return {
            "left_keys": [k.name() for k in _seq(self.java.leftKeys())],
            "right_keys": [k.name() for k in _seq(self.java.rightKeys())],
            "type": self.java.joinType().toString(),
            "build_side": self.java.buildSide().toString(),
            "condition": condition.get().sql() if condition.isDefined() else None,
        }

    def condition(self) -> str:
        """A Filter's condition, as SQL."""
        return self.java.condition().sql()

    def expressions(self) -> list[str]:
        """The node's expressions, as SQL."""
        return [e.sql() for e in _seq(self.java.expressions())]

    def scan_metadata(self, key: str) -> str:
        """A file scan's metadata entry (ReadSchema, PushedFilters, Location, ...)."""
        return self.java.metadata().get(key).get()

    def read_columns(self) -> list[str]:
        return list(self.java.requiredSchema().fieldNames())


def _node(java) -> Node:
    return Node(java.nodeName(), java, [_node(child) for child in _seq(java.children())])


def physical_plan(df) -> Node:
    plan = df._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.executedPlan()  # not run yet: AQE's initial plan, with its exchanges
    return _node(plan)


def nodes(df) -> list[Node]:
    return physical_plan(df).walk()


def names(df) -> list[str]:
    return [node.name for node in nodes(df)]


def shuffle_keys(df) -> list[str]:
    """The first column each Exchange hashes on, scan first; every Exchange must hash."""
    keys = []
    for node in nodes(df):
        if node.name == "Exchange":
            kind, columns = node.shuffle()
            assert kind == "HashPartitioning", kind
            keys.append(columns[0])
    return keys
