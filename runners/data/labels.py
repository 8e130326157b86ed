"""Labels as integers 0..K-1 and their names: each file's label cells checked (a bad cell is named by file, column
and row), names taken from --label-names, the data or the source, and every mapping that is not in the data said."""
from __future__ import annotations

import numpy as np
import pandas as pd

from runners.core.errors import UserError
from runners.data.sources import Source


def integer_labels(train: pd.DataFrame, test: pd.DataFrame | None, source: Source, where: dict[str, str],
                   declared: tuple[str, ...] | None, given: tuple[str, ...] | None,
                   log) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    """String labels map through their sorted set (or --label-names' order of the same set, or a built-in dataset's
    order when they are its names); booleans are strings False and True. Integer labels are named by --label-names,
    else a `label_text` column, else the names the source declares, else a named built-in dataset's (local files
    only), else 0..K-1. `where` names each split's file for the messages."""
    _check_given(given)
    frames = {split: df for split, df in (("train", train), ("test", test)) if df is not None}
    for split, df in frames.items():
        _check_present(df, where[split], source.label_column)
        frames[split] = _bools_as_strings(df)
    if not pd.api.types.is_numeric_dtype(frames["train"].label):
        return _strings(frames["train"], frames.get("test"), source, given, log)
    for split, df in frames.items():  # train's cells first: a fault in its own file before a mismatch with test's
        frames[split] = df = df if split == "train" else _as_numbers(df, where)
        _check_integers(df, where[split], source.label_column, split)
    k = int(frames["train"].label.max()) + 1
    if k > len(frames["train"]):  # K outputs: a stray large label would size the classifier (and memory) by it
        row = int(np.argmax(frames["train"].label.to_numpy()))
        raise UserError(f"{where['train']}: label {k - 1} in {_rows(where['train'], [row])} would make {k} classes "
                        f"(labels run 0..K-1), more than its {len(frames['train'])} rows: number the classes from 0")
    frames = {split: df.astype({"label": "int64"}) for split, df in frames.items()}
    return frames["train"], frames.get("test"), _integer_names(frames["train"], k, source, declared, given, log)


def _as_numbers(test: pd.DataFrame, where: dict[str, str]) -> pd.DataFrame:
    """Test's labels as numbers, as train's are: JSON's "1" is the number 1, but 'pos' is another kind of label."""
    if pd.api.types.is_numeric_dtype(test.label):
        return test
    numbers = pd.to_numeric(test.label, errors="coerce")
    odd = np.flatnonzero(numbers.isna())
    if len(odd):
        raise UserError(f"{where['train']} has integer labels but {where['test']} has {test.label.iloc[odd[0]]!r} in "
                        f"{_rows(where['test'], odd)}: label both files the same way, integers or strings")
    return test.assign(label=numbers)


def _integer_names(train: pd.DataFrame, k: int, source: Source, declared: tuple[str, ...] | None,
                   given: tuple[str, ...] | None, log) -> tuple[str, ...]:
    from_text = None
    if "label_text" in train:  # a label's first non-empty label_text names it
        pairs = train.dropna(subset=["label_text"]).drop_duplicates("label").set_index("label").label_text
        from_text = tuple(str(pairs.get(i, i)) for i in range(k))
    k = max(k, len(declared or ()))  # a hub dataset may declare a class that its train split lacks
    if given is not None:  # the user's flag wins, or is refused: never silently dropped
        if len(given) != k:
            raise UserError(f"--label-names gives {len(given)} name{'s' * (len(given) != 1)} ({', '.join(given)}) "
                            f"but the labels run 0..{k - 1}: give exactly {k}, one per label")
        ours, whose = (from_text, "the data's label_text") if from_text else (declared, f"{source.hub_id}'s declared")
        if ours and tuple(ours) != given:
            log(f"--label-names {','.join(given)} overrides {whose} names ({', '.join(ours)})")
        return given
    if from_text:
        return from_text
    if declared:
        if len(declared) < k:
            raise UserError(f"{source.hub_id} declares {len(declared)} label names ({', '.join(declared)}) for "
                            f"labels 0..{k - 1}")
        return declared
    if source.data_dir and source.named and source.info and len(source.info.label_names) == k:
        log(f"labels are integers without names: using {source.name}'s, "
            f"{', '.join(f'{i}={n}' for i, n in enumerate(source.info.label_names))} (--label-names to change)")
        return source.info.label_names
    log(f"labels are integers without names: calling them 0..{k - 1} (--label-names to name them)")
    return tuple(str(i) for i in range(k))


def _strings(train: pd.DataFrame, test: pd.DataFrame | None, source: Source, given: tuple[str, ...] | None,
             log) -> tuple[pd.DataFrame, pd.DataFrame | None, tuple[str, ...]]:
    names = sorted(set(train.label.astype(str)))
    order = ""
    if given is not None:  # string labels name themselves: the flag can only order them
        if set(given) != set(names):
            raise UserError(f"--label-names {','.join(given)} is not the set of the data's string labels "
                            f"({', '.join(names)}): string labels name themselves, so --label-names may only give "
                            f"their order")
        names, order = list(given), " (in --label-names order)"
    elif source.info and set(names) == set(source.info.label_names):
        names = list(source.info.label_names)
    ids = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(test.label.astype(str)) - set(ids)) if test is not None else []
    if unknown:
        raise UserError(f"test has label(s) {', '.join(map(repr, unknown[:5]))} that train never has")
    kind = "booleans" if set(names) == {"False", "True"} else "strings"
    log(f"labels are {kind}: mapped {', '.join(f'{n!r}→{i}' for n, i in ids.items())}{order}")
    train, test = (None if df is None else df.assign(label=df.label.astype(str).map(ids)) for df in (train, test))
    return train, test, tuple(names)


def _check_given(given: tuple[str, ...] | None) -> None:
    if given is None:
        return
    if not all(given):
        raise UserError(f"--label-names {','.join(given)} has an empty name")
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise UserError(f"--label-names {','.join(given)} gives {', '.join(map(repr, twice))} twice: each label "
                        f"needs its own name")


def _check_present(df: pd.DataFrame, where: str, column: str) -> None:
    """Every row has a label: a missing cell (empty in a CSV, null in parquet or JSON) or one of only spaces."""
    missing = df.label.isna().to_numpy(copy=True)
    if df.label.dtype == object:
        missing |= df.label.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    if missing.any():
        raise UserError(f"{where}: label column {column!r} is empty in {_rows(where, np.flatnonzero(missing))}: "
                        f"every row needs a label")


def _check_integers(df: pd.DataFrame, where: str, column: str, split: str) -> None:
    values = df.label.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if len(bad):
        raise UserError(f"{where}: label column {column!r} has {values[bad[0]]:g}, not an integer, in "
                        f"{_rows(where, bad)}: labels must be integers 0..K-1 or strings")
    if values.min() < 0:
        raise UserError(f"{split} labels must be integers 0..K-1, found {int(values.min())}")


def _bools_as_strings(df: pd.DataFrame) -> pd.DataFrame:
    """True/False labels (a CSV's or a parquet's booleans) are names, not the numbers 1 and 0."""
    return df.assign(label=df.label.astype(str)) if pd.api.types.is_bool_dtype(df.label) else df


def _rows(where: str, positions) -> str:
    """'rows 3, 7 (data rows counted from 1, …)': 1-based positions among the data rows, which for a CSV without
    line breaks inside its cells is the line number minus one."""
    rows = [int(p) + 1 for p in positions]
    shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5:,} more" if len(rows) > 5 else "")
    after = ", after the header" if where.endswith((".csv", ".tsv")) else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown} (data rows counted from 1{after})"
