# Arithmetic reasoning suite: graded problems with exact answers and step-by-step solutions,
# seeded disjoint train/validation/test splits, JSONL files and the answer checker. Pure Python.
"""Arithmetic reasoning problems for ponder's tiny reasoning model and its experiments.

Levels (see experiments/tasks/README.md for worked examples):
  1  addition of two 3-5 digit numbers with at least one carry ("What is 4821 + 937?")
  2  multiplication of a 3-digit number by a 2-digit number, by partial products
  3  an expression with 2-3 operations among + - * (precedence; negative results possible)
  4  an expression with 4-5 operations
  5  an expression with 6 operations

Every problem carries a solution: the working written in the thinking block, one small step per
line, using only single-digit facts (column addition with carries, column subtraction with
borrows, multiplication digit by digit, rewriting the expression after each operation). No step
needs a decision that is not written down just before it: a column's borrow follows from the
digits on its own line, and a subtraction whose result is negative shows itself by a borrow out
of the last column, after which it is redone the other way round.

Splits are decided by a hash of the canonical question text, so no question -- in any surface
form ("What is 47*23+158?", "Compute 47 * 23 + 158.") -- can appear in two splits whatever the
seeds and sizes; a split of n problems is the first n distinct questions of that split drawn from
a seeded generator. The training stream never ends and never leaves the train split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from typing import Iterable, Iterator, Optional

LEVELS = {
    1: "addition of two 3-5 digit numbers with carries",
    2: "multiplication (3 digits by 2 digits) by partial products",
    3: "expression with 2-3 operations (+ - *, precedence)",
    4: "expression with 4-5 operations (+ - *, precedence)",
    5: "expression with 6 operations (+ - *, precedence)",
}
SPLITS = ("train", "validation", "test")
# Hash buckets (of 100) of each split: 5% test, 5% validation, 90% train.
_SPLIT_BUCKETS = {"test": range(0, 5), "validation": range(5, 10), "train": range(10, 100)}
DEFAULT_SEED = 20250101


@dataclasses.dataclass(frozen=True)
class Problem:
    question: str    # the user message, e.g. "What is 12 + 7 * 8 - 5?"
    answer: str      # exact integer answer as text, e.g. "63" or "-31"
    difficulty: int  # level 1-5
    solution: str    # the working (thinking block content), lines separated by "\n"

    def to_record(self, pid: str) -> dict:
        return {"id": pid, "question": self.question, "answer": self.answer,
                "difficulty": self.difficulty}


# ---------------------------------------------------------------------------------------------
# Step-by-step working. Each function appends lines to `out` and returns the integer result.


def _digits_rev(n: int) -> list[int]:
    return [int(c) for c in reversed(str(n))]


def _assemble(cols: list[int]) -> int:
    """Result of a column algorithm: the last column value in full, then the ones digits of the
    earlier columns from left to right (e.g. columns 8, 5, 17, 5 -> 5758)."""
    text = str(cols[-1]) + "".join(str(c % 10) for c in reversed(cols[:-1]))
    return int(text)


def add_steps(a: int, b: int, out: list[str]) -> int:
    """a + b for a, b >= 0: one line "x+y+carry=sum" per column, rightmost first."""
    da, db = _digits_rev(a), _digits_rev(b)
    carry, cols = 0, []
    for i in range(max(len(da), len(db))):
        x = da[i] if i < len(da) else 0
        y = db[i] if i < len(db) else 0
        s = x + y + carry
        out.append(f"{x}+{y}+{carry}={s}")
        cols.append(s)
        carry = s // 10
    result = _assemble(cols)
    assert result == a + b
    return result


def sub_steps(a: int, b: int, out: list[str]) -> int:
    """a - b for a, b >= 0, column by column from the right: one line "x-y-borrow=r" per
    column, written "x-y-borrow+10=r" when the column borrows ten from the next one (so the
    borrow is decided after the digits are written). A borrow out of the last column means
    a < b: the line "=-(b-a)" follows and the subtraction is done again the other way round."""
    assert a >= 0 and b >= 0
    da, db = _digits_rev(a), _digits_rev(b)
    borrow, digits = 0, []
    for i in range(max(len(da), len(db))):
        x = da[i] if i < len(da) else 0
        y = db[i] if i < len(db) else 0
        r = x - y - borrow
        if r < 0:
            out.append(f"{x}-{y}-{borrow}+10={r + 10}")
            digits.append(r + 10)
            borrow = 1
        else:
            out.append(f"{x}-{y}-{borrow}={r}")
            digits.append(r)
            borrow = 0
    if borrow:
        assert a < b
        out.append(f"=-({b}-{a})")
        return -sub_steps(b, a, out)
    result = int("".join(str(d) for d in reversed(digits)))
    assert result == a - b
    return result


def mul_digit_steps(a: int, d: int, out: list[str]) -> int:
    """a * d for a >= 0 and a single digit d: one line "x*d+carry=p" per digit of a."""
    assert 0 <= d <= 9
    carry, cols = 0, []
    for x in _digits_rev(a):
        p = x * d + carry
        out.append(f"{x}*{d}+{carry}={p}")
        cols.append(p)
        carry = p // 10
    result = _assemble(cols)
    assert result == a * d
    return result


def mul_steps(a: int, b: int, out: list[str]) -> int:
    """a * b for a >= 0 and 0 <= b <= 99: digit by digit, then partial products added."""
    if b < 10:
        return mul_digit_steps(a, b, out)
    tens, ones = divmod(b, 10)
    out.append(f"{a}*{ones}")
    p1 = mul_digit_steps(a, ones, out)
    out.append(f"={p1}")
    out.append(f"{a}*{tens}")
    p2 = mul_digit_steps(a, tens, out)
    out.append(f"={p2}")
    out.append(f"{p2}*10={p2 * 10}")
    out.append(f"{p1}+{p2 * 10}")
    return add_steps(p1, p2 * 10, out)


def signed_step(a: int, op: str, b: int, out: list[str]) -> int:
    """a op b where a may be negative and b >= 0; a negative left operand is first rewritten
    into an operation on non-negative numbers ("=40-31", "=-(31+40)")."""
    if op == "*":
        assert a >= 0
        return mul_steps(a, b, out)
    if op == "+" and a >= 0:
        return add_steps(a, b, out)
    if op == "+":  # -x + b = b - x
        out.append(f"={b}-{-a}")
        return sub_steps(b, -a, out)
    if a < 0:      # -x - b = -(x + b)
        out.append(f"=-({-a}+{b})")
        return -add_steps(-a, b, out)
    return sub_steps(a, b, out)


def _format_expr(terms: list[int], ops: list[str]) -> str:
    parts = [str(terms[0])]
    for op, t in zip(ops, terms[1:]):
        parts += [op, str(t)]
    return "".join(parts)


def expression_steps(terms: list[int], ops: list[str], out: list[str]) -> int:
    """Evaluates terms[0] ops[0] terms[1] ... one operation at a time: the first "*" if any,
    else the leftmost operation. The caller has written the expression; each step writes the
    operation (unless it is the whole expression), its working and "=result", then the
    rewritten expression unless nothing is left to do."""
    terms, ops = list(terms), list(ops)
    while ops:
        i = ops.index("*") if "*" in ops else 0
        a, op, b = terms[i], ops[i], terms[i + 1]
        if len(ops) > 1:
            out.append(f"{a}{op}{b}")
        r = signed_step(a, op, b, out)
        out.append(f"={r}")
        terms[i:i + 2] = [r]
        del ops[i]
        if ops:
            out.append(_format_expr(terms, ops))
    return terms[0]


# ---------------------------------------------------------------------------------------------
# Problem generators, one per level.


def _rand_digits(rng: random.Random, n_digits: int) -> int:
    return rng.randint(10 ** (n_digits - 1), 10 ** n_digits - 1)


def _has_carry(a: int, b: int) -> bool:
    while a or b:
        if a % 10 + b % 10 >= 10:
            return True
        a, b = a // 10, b // 10
    return False


def _level1(rng: random.Random) -> tuple[list[int], list[str]]:
    while True:
        a = _rand_digits(rng, rng.randint(3, 5))
        b = _rand_digits(rng, rng.randint(3, 5))
        if _has_carry(a, b):
            return [a, b], ["+"]


def _level2(rng: random.Random) -> tuple[list[int], list[str]]:
    return [_rand_digits(rng, 3), _rand_digits(rng, 2)], ["*"]


def _random_expression(rng: random.Random, n_ops: int, two_digit_multiplier: float = 0.5
                       ) -> tuple[list[int], list[str]]:
    """Operands: a literal multiplied on its right has 1-2 digits (2-99); the right operand of
    "*" has two digits (10-99) with probability `two_digit_multiplier`, else one (2-9), and
    always one when its left operand is itself a product (a*b*c); every other literal has 1-3
    digits."""
    ops = [rng.choice("+-*") for _ in range(n_ops)]
    terms = []
    for i in range(n_ops + 1):
        if i > 0 and ops[i - 1] == "*":
            chained = i > 1 and ops[i - 2] == "*"
            if not chained and rng.random() < two_digit_multiplier:
                terms.append(rng.randint(10, 99))
            else:
                terms.append(rng.randint(2, 9))
        elif i < n_ops and ops[i] == "*":
            terms.append(rng.randint(2, 99))
        else:
            terms.append(_rand_digits(rng, rng.choice((1, 2, 2, 3, 3))))
    return terms, ops


def _level3(rng: random.Random) -> tuple[list[int], list[str]]:
    return _random_expression(rng, rng.choice((2, 3)))


def _level4(rng: random.Random) -> tuple[list[int], list[str]]:
    return _random_expression(rng, rng.choice((4, 5)))


def _level5(rng: random.Random) -> tuple[list[int], list[str]]:
    return _random_expression(rng, 6)


_GENERATORS = {1: _level1, 2: _level2, 3: _level3, 4: _level4, 5: _level5}


def make_problem(terms: list[int], ops: list[str], difficulty: int) -> Problem:
    """The problem "What is <terms joined by ops>?" (canonical form) with its working and exact
    answer."""
    pretty = format_expression(terms, ops)
    lines = [_format_expr(terms, ops)]
    value = expression_steps(terms, ops, lines)
    expected = eval(_format_expr(terms, ops), {"__builtins__": {}})  # digits and + - * only
    assert value == expected, (terms, ops, value, expected)
    return Problem(question=QUESTION_TEMPLATES[0].format(pretty), answer=str(value), difficulty=difficulty,
                   solution="\n".join(lines))


def random_problem(rng: random.Random, difficulty: int) -> Problem:
    terms, ops = _GENERATORS[difficulty](rng)
    return make_problem(terms, ops, difficulty)


# ---------------------------------------------------------------------------------------------
# Surface forms. The canonical question is "What is 47 * 23 + 158?" (single spaces around the
# operators); test and validation files use only that form. Training also shows other forms of
# the same problem ("What is 47*23+158?", "Compute 47 * 23 + 158.", "47*23+158=?") so that the
# model reads what people type; the working is the same for all of them.

# Templates of the question around the expression; the first is the canonical one.
QUESTION_TEMPLATES = ("What is {}?", "Compute {}.", "Calculate {}.", "Evaluate {}.",
                      "What's {}?", "{}=?", "{} = ?", "{}")
_EXPR_RE = re.compile(r"\d+(?:\s*[-+*]\s*\d+)+")


def format_expression(terms: list[int], ops: list[str], spacing: str = "spaced",
                      rng: Optional[random.Random] = None) -> str:
    """terms and ops as text: "spaced" "47 * 23 + 158", "tight" "47*23+158", or "mixed" (each
    operator spaced or not at random, from rng)."""
    parts = [str(terms[0])]
    for op, t in zip(ops, terms[1:]):
        spaced = spacing == "spaced" or (spacing == "mixed" and rng.random() < 0.5)
        parts += [f" {op} " if spaced else op, str(t)]
    return "".join(parts)


def parse_expression(question: str) -> Optional[tuple[list[int], list[str]]]:
    """terms and ops of the first expression in a question of any surface form, or None."""
    m = _EXPR_RE.search(question)
    if not m:
        return None
    tokens = re.findall(r"\d+|[-+*]", m.group(0))
    return [int(t) for t in tokens[0::2]], tokens[1::2]


def canonical_question(question: str) -> str:
    """The canonical form of a question ("What is 47 * 23 + 158?" for "47*23+158=?"); a text
    without an expression is returned as it is."""
    parsed = parse_expression(question)
    if parsed is None:
        return question
    return QUESTION_TEMPLATES[0].format(format_expression(*parsed))


def surface_variant(p: Problem, rng: random.Random) -> Problem:
    """The same problem asked in another surface form, drawn from rng: operators without spaces
    (60%), with spaces (25%) or mixed (15%), in the canonical template (half the time) or one of
    the others. The solution and answer are unchanged."""
    parsed = parse_expression(p.question)
    assert parsed is not None, p.question
    spacing = rng.choices(("tight", "spaced", "mixed"), (0.60, 0.25, 0.15))[0]
    template = (QUESTION_TEMPLATES[0] if rng.random() < 0.5
                else rng.choice(QUESTION_TEMPLATES[1:]))
    question = template.format(format_expression(*parsed, spacing=spacing, rng=rng))
    return dataclasses.replace(p, question=question)


# ---------------------------------------------------------------------------------------------
# Splits.


def split_of(question: str) -> str:
    """The split a question belongs to, from a stable hash of its canonical text (so every
    surface form of a question is in the same split)."""
    digest = hashlib.sha256(("arith|" + canonical_question(question)).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    for name, buckets in _SPLIT_BUCKETS.items():
        if bucket in buckets:
            return name
    raise AssertionError(bucket)


def make_split(split: str, difficulty: int, n: int, seed: int = DEFAULT_SEED) -> list[Problem]:
    """The first n distinct problems of `split` at `difficulty` drawn from a generator seeded by
    (seed, split, difficulty). Deterministic; a smaller n gives a prefix of a larger one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if difficulty not in LEVELS:
        raise ValueError(f"unknown difficulty {difficulty!r}; expected one of {sorted(LEVELS)}")
    rng = random.Random(f"arith/{seed}/{split}/{difficulty}")
    seen, problems = set(), []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 1000 * n + 100000:
            raise RuntimeError(f"could not draw {n} distinct {split} problems at level "
                               f"{difficulty}")
        p = random_problem(rng, difficulty)
        if p.question in seen or split_of(p.question) != split:
            continue
        seen.add(p.question)
        problems.append(p)
    return problems


def problem_id(split: str, difficulty: int, index: int) -> str:
    return f"arith-{split}-l{difficulty}-{index:04d}"


def split_records(split: str, difficulty: int, n: int, seed: int = DEFAULT_SEED) -> list[dict]:
    return [p.to_record(problem_id(split, difficulty, i))
            for i, p in enumerate(make_split(split, difficulty, n, seed))]


def train_stream(seed: int = DEFAULT_SEED, weights: Optional[dict[int, float]] = None,
                 variants: float = 0.0) -> Iterator[Problem]:
    """An endless, deterministic stream of train-split problems, levels drawn by `weights`
    (default: equal). A share `variants` of them is asked in another surface form
    (`surface_variant`, from a generator of its own: the problems drawn do not depend on it).
    Repeats are possible where a level's problem space is small."""
    weights = weights or {level: 1.0 for level in LEVELS}
    levels = sorted(weights)
    rng = random.Random(f"arith/{seed}/train-stream")
    surface_rng = random.Random(f"arith/{seed}/train-stream/surface")
    while True:
        level = rng.choices(levels, [weights[k] for k in levels])[0]
        p = random_problem(rng, level)
        if split_of(p.question) == "train":
            if variants and surface_rng.random() < variants:
                p = surface_variant(p, surface_rng)
            yield p


# ---------------------------------------------------------------------------------------------
# JSONL.


def write_jsonl(records: Iterable[dict], path: str) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------
# Answer checker.

THINK_END = "</think>"
_INT_RE = re.compile(r"[-+]?\d+(?:,\d{3})*(?!\d)")


def _last_boxed(text: str) -> Optional[str]:
    """Content of the last \\boxed{...} in text (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    while start != -1:
        i, depth = start + len("\\boxed{"), 1
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len("\\boxed{"):i - 1]
        start = text.rfind("\\boxed{", 0, start)  # unclosed: try an earlier one
    return None


def normalize_answer(text: str) -> str:
    """Canonical form for exact comparison: whitespace, '$' and thousands separators dropped,
    the Unicode minus read as '-', integers written without sign '+' or leading zeros."""
    t = text.strip().replace("\u2212", "-").replace("$", "")
    t = re.sub(r"\s+", "", t)
    if t.endswith("."):
        t = t[:-1]
    if re.fullmatch(r"[-+]?\d+(?:,\d{3})*", t):
        return str(int(t.replace(",", "")))
    return t


def extract_answer(completion: str) -> Optional[str]:
    """The final answer of a completion, normalized, or None when it gives none.

    The answer is looked for after the last "</think>" (the whole completion when there is none,
    as with a prompt that already closed the thinking block): the last \\boxed{...} there, else
    -- only when "</think>" was seen -- the last integer there. A completion whose thinking
    never closes and which has no \\boxed{} has no answer; neither has an empty \\boxed{}.
    """
    closed = THINK_END in completion
    region = completion.rsplit(THINK_END, 1)[1] if closed else completion
    boxed = _last_boxed(region)
    if boxed is not None:
        return normalize_answer(boxed) or None
    if not closed:
        return None
    numbers = _INT_RE.findall(region.replace("\u2212", "-"))
    return normalize_answer(numbers[-1]) if numbers else None


def is_correct(completion: str, answer: str) -> bool:
    """True when the completion's final answer equals the reference answer exactly."""
    got = extract_answer(completion)
    return got is not None and got == normalize_answer(answer)


if __name__ == "__main__":
    from experiments.tasks.cli import main

    raise SystemExit(main())
