# Unit tests of the arithmetic task suite (experiments/tasks): splits, determinism, worked
# solutions, the committed test files, the answer checker and the metrics. /usr/bin/python3 only.
#
#   /usr/bin/python3 -m unittest tests/experiments/test_arith.py    (from the repository root)

import os
import random
import re
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from experiments.tasks import arith, metrics  # noqa: E402

TASK_DIR = os.path.join(REPO, "tests", "data", "tasks")


def _questions(split, level, n, seed=arith.DEFAULT_SEED):
    return [p.question for p in arith.make_split(split, level, n, seed)]


def _expression(question):
    m = re.fullmatch(r"What is ([0-9 +*-]+)\?", question)
    assert m, question
    return m.group(1)


def _expressions(questions):
    """The expressions of questions in any surface form, as (terms, ops) tuples."""
    out = set()
    for q in questions:
        terms, ops = arith.parse_expression(q)
        out.add((tuple(terms), tuple(ops)))
    return out


class SplitTest(unittest.TestCase):
    def test_splits_are_disjoint(self):
        for level in arith.LEVELS:
            test = set(_questions("test", level, 300))
            val = set(_questions("validation", level, 300))
            train = set(_questions("train", level, 2000))
            self.assertFalse(test & val, level)
            self.assertFalse(test & train, level)
            self.assertFalse(val & train, level)

    def test_surface_forms_share_the_split(self):
        rng = random.Random(5)
        for split in arith.SPLITS:
            for p in arith.make_split(split, 3, 60):
                terms, ops = arith.parse_expression(p.question)
                forms = [arith.surface_variant(p, rng).question for _ in range(6)]
                forms += [f"What is {arith.format_expression(terms, ops, 'tight')}?",
                          f"{arith.format_expression(terms, ops, 'tight')}=?",
                          f"Compute {arith.format_expression(terms, ops)}.",
                          f"  what is {arith.format_expression(terms, ops)} ?  "]
                for q in forms:
                    self.assertEqual(arith.canonical_question(q), p.question, q)
                    self.assertEqual(arith.split_of(q), split, q)

    def test_training_never_sees_a_test_or_validation_problem_in_any_form(self):
        stream = arith.train_stream(seed=11, variants=1.0)
        trained = [next(stream) for _ in range(4000)]
        self.assertTrue(all(arith.split_of(p.question) == "train" for p in trained))
        held_out = set()
        for split in ("test", "validation"):
            for level in arith.LEVELS:
                held_out |= _expressions(_questions(split, level, 300))
        seen = _expressions(p.question for p in trained)
        self.assertGreater(len(seen), 3000)
        self.assertFalse(seen & held_out)
        # The problems trained on are the same whatever share of them is reworded.
        plain = arith.train_stream(seed=11)
        self.assertEqual(_expressions(next(plain).question for _ in range(4000)), seen)

    def test_every_problem_is_in_its_split(self):
        for split in arith.SPLITS:
            for q in _questions(split, 3, 50):
                self.assertEqual(arith.split_of(q), split)

    def test_problems_within_a_split_are_distinct(self):
        for level in arith.LEVELS:
            qs = _questions("test", level, 300)
            self.assertEqual(len(qs), len(set(qs)), level)

    def test_train_stream_stays_in_train(self):
        stream = arith.train_stream(seed=7)
        problems = [next(stream) for _ in range(500)]
        self.assertTrue(all(arith.split_of(p.question) == "train" for p in problems))
        self.assertEqual({p.difficulty for p in problems}, set(arith.LEVELS))

    def test_train_stream_variants(self):
        stream = arith.train_stream(seed=7, variants=0.3)
        problems = [next(stream) for _ in range(1000)]
        reworded = [p for p in problems if p.question != arith.canonical_question(p.question)]
        self.assertTrue(200 <= len(reworded) <= 400, len(reworded))
        self.assertTrue(any("*" in p.question and " * " not in p.question for p in reworded))
        for p in problems:  # the working and answer are those of the canonical question
            terms, ops = arith.parse_expression(p.question)
            canonical = arith.make_problem(terms, ops, p.difficulty)
            self.assertEqual((p.solution, p.answer), (canonical.solution, canonical.answer))

    def test_train_stream_weights(self):
        stream = arith.train_stream(seed=7, weights={2: 1.0})
        self.assertEqual({next(stream).difficulty for _ in range(50)}, {2})

    def test_unknown_split_or_level(self):
        with self.assertRaises(ValueError):
            arith.make_split("dev", 1, 1)
        with self.assertRaises(ValueError):
            arith.make_split("test", 9, 1)


class DeterminismTest(unittest.TestCase):
    def test_same_seed_same_problems(self):
        for level in arith.LEVELS:
            self.assertEqual(arith.make_split("test", level, 40),
                             arith.make_split("test", level, 40))

    def test_other_seed_other_problems(self):
        self.assertNotEqual(_questions("test", 4, 40, seed=1), _questions("test", 4, 40, seed=2))

    def test_smaller_split_is_a_prefix(self):
        self.assertEqual(_questions("validation", 2, 25), _questions("validation", 2, 100)[:25])

    def test_train_stream_is_deterministic(self):
        a, b = arith.train_stream(seed=3), arith.train_stream(seed=3)
        self.assertEqual([next(a) for _ in range(100)], [next(b) for _ in range(100)])

    def test_committed_test_files_match_the_generator(self):
        for level in arith.LEVELS:
            path = os.path.join(TASK_DIR, f"arith_test_l{level}.jsonl")
            committed = arith.read_jsonl(path)
            self.assertGreaterEqual(len(committed), 200, path)
            self.assertEqual(committed, arith.split_records("test", level, len(committed)), path)


class ProblemTest(unittest.TestCase):
    def test_answers_are_exact(self):
        for level in arith.LEVELS:
            for p in arith.make_split("validation", level, 200):
                expr = _expression(p.question)
                self.assertEqual(p.answer, str(eval(expr, {"__builtins__": {}})), p.question)
                self.assertEqual(p.solution.splitlines()[-1], "=" + p.answer)
                self.assertEqual(p.solution.splitlines()[0], expr.replace(" ", ""))

    def test_every_working_line_is_true(self):
        patterns = [
            (re.compile(r"(\d)\+(\d)\+(\d)=(\d+)"), lambda x, y, c: x + y + c),
            (re.compile(r"(\d)\*(\d)\+(\d+)=(\d+)"), lambda x, d, c: x * d + c),
            (re.compile(r"(\d)-(\d)-(\d)=(\d)"), lambda x, y, b: x - y - b),
            (re.compile(r"(\d)-(\d)-(\d)\+10=(\d)"), lambda x, y, b: 10 + x - y - b),
        ]
        checked = 0
        for level in arith.LEVELS:
            for p in arith.make_split("train", level, 100):
                for line in p.solution.splitlines():
                    for pattern, fn in patterns:
                        m = pattern.fullmatch(line)
                        if m:
                            *args, result = (int(g) for g in m.groups())
                            self.assertEqual(fn(*args), result, (p.question, line))
                            checked += 1
        self.assertGreater(checked, 1000)

    def test_borrow_is_written_after_the_digits(self):
        lines = []
        self.assertEqual(arith.sub_steps(136, 37, lines), 99)
        self.assertEqual(lines, ["6-7-0+10=9", "3-3-1+10=9", "1-0-1=0"])
        lines = []
        self.assertEqual(arith.sub_steps(81, 96, lines), -15)  # a borrow out of the last column
        self.assertEqual(lines, ["1-6-0+10=5", "8-9-1+10=8", "=-(96-81)", "6-1-0=5", "9-8-0=1"])
        lines = []
        self.assertEqual(arith.sub_steps(5, 5, lines), 0)
        self.assertEqual(lines, ["5-5-0=0"])
        for a, b in ((1000, 1), (7, 1234), (500, 499), (12, 12)):
            self.assertEqual(arith.sub_steps(a, b, []), a - b)

    def test_level_shapes(self):
        for p in arith.make_split("test", 1, 100):
            a, b = (int(x) for x in _expression(p.question).split(" + "))
            self.assertTrue(100 <= a <= 99999 and 100 <= b <= 99999)
            self.assertTrue(any(int(x) + int(y) >= 10 for x, y in
                                zip(str(a).zfill(5), str(b).zfill(5))), p.question)
        for p in arith.make_split("test", 2, 100):
            a, b = (int(x) for x in _expression(p.question).split(" * "))
            self.assertTrue(100 <= a <= 999 and 10 <= b <= 99, p.question)
        for level, n_ops in ((3, {2, 3}), (4, {4, 5}), (5, {6})):
            two_digit = 0
            for p in arith.make_split("test", level, 100):
                terms, ops = arith.parse_expression(p.question)
                self.assertIn(len(ops), n_ops, p.question)
                for i, op in enumerate(ops):
                    if op != "*":
                        continue
                    if i == 0 or ops[i - 1] != "*":
                        self.assertTrue(2 <= terms[i] <= 99, p.question)
                    self.assertTrue(2 <= terms[i + 1] <= (9 if i and ops[i - 1] == "*" else 99),
                                    p.question)
                    two_digit += terms[i + 1] >= 10
                self.assertTrue(all(1 <= t <= 999 for t in terms), p.question)
            self.assertGreater(two_digit, 10, level)

    def test_the_issue_example(self):
        p = arith.make_problem([47, 23, 158], ["*", "+"], 3)
        self.assertEqual((p.question, p.answer), ("What is 47 * 23 + 158?", "1239"))
        self.assertEqual(p.solution.splitlines()[:3], ["47*23+158", "47*23", "47*3"])
        self.assertEqual(arith.canonical_question("What is 47*23+158?"), p.question)

    def test_negative_working(self):
        p = arith.make_problem([5, 36, 40], ["-", "+"], 3)
        self.assertEqual(p.answer, "9")
        self.assertIn("5-6-0+10=9\n0-3-1+10=6\n=-(36-5)", p.solution)
        self.assertIn("=40-31", p.solution)
        p = arith.make_problem([5, 36, 4], ["-", "+"], 3)
        self.assertEqual(p.answer, "-27")
        self.assertIn("=4-31\n4-1-0=3\n0-3-0+10=7\n=-(31-4)", p.solution)
        p = arith.make_problem([5, 36, 40], ["-", "-"], 3)
        self.assertEqual(p.answer, "-71")
        self.assertIn("=-(31+40)", p.solution)

    def test_precedence(self):
        p = arith.make_problem([12, 7, 8, 5], ["+", "*", "-"], 4)
        self.assertEqual(p.answer, "63")
        self.assertEqual(p.solution.splitlines()[:2], ["12+7*8-5", "7*8"])

    def test_write_jsonl_round_trip(self):
        records = arith.split_records("validation", 3, 5)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v.jsonl")
            self.assertEqual(arith.write_jsonl(records, path), 5)
            self.assertEqual(arith.read_jsonl(path), records)
        self.assertEqual(set(records[0]), {"id", "question", "answer", "difficulty"})


class CheckerTest(unittest.TestCase):
    def test_plain_answer_after_think(self):
        self.assertEqual(arith.extract_answer("7*8+0=56\n=56\n</think>\n\n56"), "56")
        self.assertTrue(arith.is_correct("…</think>\n\nThe answer is 1239.", "1239"))

    def test_boxed(self):
        self.assertEqual(arith.extract_answer("<think>\n=5\n</think>\n\n\\boxed{1239}"), "1239")
        self.assertEqual(arith.extract_answer("\\boxed{42}"), "42")  # thinking closed by prompt

    def test_boxed_without_think_block(self):
        self.assertTrue(arith.is_correct("\\boxed{-7}<|im_end|>", "-7"))

    def test_missing_answer(self):
        self.assertIsNone(arith.extract_answer(""))
        self.assertIsNone(arith.extract_answer("4+5+0=9\n=9"))  # thinking never closed
        self.assertIsNone(arith.extract_answer("=9\n</think>\n\n"))
        self.assertIsNone(arith.extract_answer("</think> the answer is \\boxed{}"))
        self.assertFalse(arith.is_correct("4+5+0=9\n=9", "9"))

    def test_extra_whitespace(self):
        self.assertTrue(arith.is_correct("</think>\n\n  \\boxed{ 1239 }  \n", "1239"))
        self.assertTrue(arith.is_correct("</think>   63 \n", " 63"))
        self.assertTrue(arith.is_correct("</think>\\boxed{- 12}", "-12"))

    def test_negative_numbers(self):
        self.assertEqual(arith.extract_answer("</think>\n\n\\boxed{-272}"), "-272")
        self.assertEqual(arith.extract_answer("</think>\n\n-272"), "-272")
        self.assertEqual(arith.extract_answer("</think>\\boxed{\u2212272}"), "-272")
        self.assertFalse(arith.is_correct("</think>\\boxed{272}", "-272"))

    def test_multiple_boxed_takes_last(self):
        text = "<think>\\boxed{1}</think>\\boxed{2} no, \\boxed{3}"
        self.assertEqual(arith.extract_answer(text), "3")

    def test_answer_after_think_wins_over_reasoning(self):
        self.assertEqual(arith.extract_answer("\\boxed{8}\n=8\n</think>\n\n9"), "9")
        self.assertEqual(arith.extract_answer("</think>x</think>\\boxed{5}"), "5")

    def test_normalization(self):
        self.assertEqual(arith.normalize_answer("+007"), "7")
        self.assertEqual(arith.normalize_answer("-0"), "0")
        self.assertEqual(arith.normalize_answer("1,239"), "1239")
        self.assertEqual(arith.normalize_answer("$63$."), "63")
        self.assertEqual(arith.extract_answer("</think>\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}")
        self.assertFalse(arith.is_correct("</think>\\boxed{63.5}", "63"))

    def test_unclosed_boxed_falls_back(self):
        self.assertEqual(arith.extract_answer("</think>\\boxed{4} and \\boxed{5"), "4")

    def test_nested_braces_and_separators(self):
        self.assertEqual(arith.extract_answer("</think>\\boxed{{1239}}"), "{1239}")
        self.assertTrue(arith.is_correct("</think>\\boxed{1,239}", "1239"))
        self.assertTrue(arith.is_correct("</think>\\boxed{007}", "7"))
        self.assertFalse(arith.is_correct("</think>\\boxed{1 239 0}", "1239"))
        self.assertIsNone(arith.extract_answer("</think>\\boxed{ }"))

    def test_cut_off_thinking_has_no_answer(self):
        # Cut by max tokens in the middle of the working: the last "=..." line is no answer.
        p = arith.make_problem([47, 23, 158], ["*", "+"], 3)
        cut = "\n".join(p.solution.splitlines()[:-1])
        self.assertIsNone(arith.extract_answer(cut))
        self.assertIsNone(arith.extract_answer(p.solution))
        self.assertFalse(arith.is_correct(p.solution, p.answer))

    def test_the_trained_completion_of_every_level_is_correct(self):
        for level in arith.LEVELS:
            for p in arith.make_split("validation", level, 20):
                completion = f"{p.solution}\n</think>\n\n\\boxed{{{p.answer}}}"
                self.assertEqual(arith.extract_answer(completion), p.answer)
                self.assertTrue(arith.is_correct(completion, p.answer))
                wrong = str(int(p.answer) + 1)
                self.assertFalse(arith.is_correct(completion.replace(
                    f"\\boxed{{{p.answer}}}", f"\\boxed{{{wrong}}}"), p.answer))

    def test_only_the_final_answer_counts(self):
        # The working's "=r" lines, the question's numbers and a wrong box before the end: none
        # of them is the answer.
        self.assertEqual(arith.extract_answer("=1239\n</think>\n\n\\boxed{1240}"), "1240")
        self.assertEqual(arith.extract_answer("</think>\n\nWhat is 2 + 3? It is 5"), "5")
        self.assertFalse(arith.is_correct("=1239\n</think>\n\n\\boxed{1240}", "1239"))


class MetricsTest(unittest.TestCase):
    def test_pass_at_k(self):
        self.assertAlmostEqual(metrics.pass_at_k(16, 0, 16), 0.0)
        self.assertAlmostEqual(metrics.pass_at_k(16, 1, 16), 1.0)
        self.assertAlmostEqual(metrics.pass_at_k(16, 4, 1), 0.25)
        self.assertAlmostEqual(metrics.pass_at_k(4, 1, 2), 0.5)
        with self.assertRaises(ValueError):
            metrics.pass_at_k(2, 1, 4)

    def test_majority(self):
        self.assertEqual(metrics.majority_answer(["1", "2", "2", None, None, None]), "2")
        self.assertEqual(metrics.majority_answer(["3", "1", "1", "3"]), "3")  # tie: first seen
        self.assertIsNone(metrics.majority_answer([None, None]))

    def test_grade(self):
        records = [{"id": "a", "question": "q", "answer": "5", "difficulty": 2},
                   {"id": "b", "question": "q", "answer": "-1", "difficulty": 2},
                   {"id": "c", "question": "q", "answer": "7", "difficulty": 3}]
        done = lambda ans: f"x\n</think>\n\n\\boxed{{{ans}}}"  # noqa: E731
        completions = {"a": [done(5), done(4), done(5), "never closed"],
                       "b": [done(1), done(2), done(-1), done(3)],
                       "c": [done(7)] * 4}
        m = metrics.grade(records, completions, arith.extract_answer, arith.normalize_answer)
        self.assertEqual(m["2"]["n"], 2)
        self.assertAlmostEqual(m["2"]["pass@1"], (2 / 4 + 1 / 4) / 2)
        self.assertAlmostEqual(m["2"]["maj@4"], 0.5)  # "b": four different answers, first wins
        self.assertAlmostEqual(m["2"]["pass@4"], 1.0)
        self.assertAlmostEqual(m["3"]["maj@4"], 1.0)


if __name__ == "__main__":
    unittest.main()
