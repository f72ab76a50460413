"""Final-answer extraction from chain-of-thought completions.

Models end their reasoning in many ways ("The answer is 18.", "#### 18",
"\\boxed{18}", "**Answer:** $18", "(B)", "Answer: b", "The correct option is C.").
Extraction first cuts the completion to the model's own solution: base models
given few-shot exemplars keep writing after their answer and invent the next
exemplar ("\n\nQ: ... The answer is 6."), whose answer is not the model's
(`own_solution`). Within that solution it tries explicit answer markers first,
last occurrence wins (models often restate a draft answer before the final one),
and falls back to the last number (GSM8K) or a lone option letter (MMLU) only
when no marker is present.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# The start of a new exemplar or question, in the prompt styles our tasks and common
# few-shot prompts use: 'Q:', 'Question:', 'Problem:' (maybe numbered, bold or a markdown
# heading) at a line start, and the MMLU task description that opens a new prompt. A
# plain blank line is not one: solutions written in paragraphs continue after it.
NEW_EXEMPLAR_RE = re.compile(
    r"\n[ \t]*(?:#{1,6}[ \t]*|\*\*)?(?:Q|Question|Problem)(?:[ \t]*\d+)?(?:\*\*)?[ \t]*:"
    r"|\nThe following are multiple choice questions"
)


def new_exemplar_start(text: str) -> int | None:
    """Character offset where `text` starts a new exemplar or question, or None."""
    match = NEW_EXEMPLAR_RE.search(text or "")
    return None if match is None else match.start()


def own_solution(text: str) -> str:
    """`text` up to the first new-exemplar marker: the model's own solution."""
    start = new_exemplar_start(text)
    return text if start is None else text[:start]


# Space only after '$' ('$ 18'), so a markdown bullet '- 18' is not read as -18.
_NUMBER = r"-?(?:\$\s*)?-?\d[\d,]*(?:\.\d+)?|-?(?:\$\s*)?-?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)

_WORD_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "hundred": 100,
}

# Markers that introduce the final answer, strongest first. Each captures the
# text right after the marker; the first number in that text is the answer
# (or the result of an equation starting there). The tail is captured in a
# lookahead so a later marker on the same line is still found.
_GSM8K_MARKERS = [
    re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}"),
    re.compile(r"####\s*(?=([^\n]*))"),
    re.compile(
        r"(?:final|correct)\s+answer\s*(?:is|:|=|would be|will be)?\s*:?\s*(?=([^\n]*))",
        re.IGNORECASE,
    ),
    re.compile(
        r"\banswer\s*(?:is|:|=|would be|will be|should be)\s*:?\s*(?=([^\n]*))", re.IGNORECASE
    ),
]

_WORDS = "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True))
_WORD_AFTER_MARKER = re.compile(rf"^[\s*$:]*({_WORDS})(?:[-\s]({_WORDS}))?\b", re.IGNORECASE)


def normalize_number(text: str) -> str | None:
    """Canonical form of a numeric answer: '$1,234.50' -> '1234.5', '18.0' -> '18'.

    Returns None when `text` holds no number.
    """
    match = _NUMBER_RE.search(text)
    if match is None:
        return None
    raw = match.group(0).replace("$", "").replace(",", "").replace(" ", "")
    negative = raw.count("-") % 2 == 1
    raw = raw.replace("-", "")
    if "." in raw:
        raw = raw.rstrip("0").rstrip(".")
    raw = raw.lstrip("0") or "0"
    if raw.startswith("."):
        raw = "0" + raw
    return f"-{raw}" if negative and raw != "0" else raw


def _strip_latex(text: str) -> str:
    text = re.sub(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\[,;!]|\\ ", "", text)  # LaTeX thin spaces inside numbers: 1{,}000
    text = text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%")
    text = re.sub(r"\\(?:d?frac)\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"\1/\2", text)
    return text


_FRACTION_RE = re.compile(r"^[\s*$:(]*(-?\d+)\s*/\s*(\d+)(?![\d.])")
_OPERAND = r"\(?-?(?:\$\s*)?\d[\d,]*(?:\.\d+)?\)?"
# 'The answer is 20 - 8 = 12.': skip the left-hand side, the result follows '='.
_EQUATION_LHS_RE = re.compile(rf"^[\s*:]*{_OPERAND}(?:\s*[-+*/x×]\s*{_OPERAND})+\s*=")


def _number_after_marker(tail: str) -> str | None:
    tail = _strip_latex(tail)
    while lhs := _EQUATION_LHS_RE.match(tail):
        tail = tail[lhs.end():]
    fraction = _FRACTION_RE.match(tail)
    if fraction and int(fraction.group(2)) != 0:
        return normalize_number(repr(int(fraction.group(1)) / int(fraction.group(2))))
    word = _WORD_AFTER_MARKER.match(tail)
    number = _NUMBER_RE.search(tail)
    if word and (number is None or word.start(1) < number.start()):
        value, second = (_WORD_NUMBERS[w.lower()] if w else 0 for w in word.groups())
        if second == 100:  # 'three hundred'
            return str(value * 100)
        # 'twenty-five' / 'twenty five'; any other second word is not part of the number
        return str(value + second if value in range(20, 100, 10) and second < 10 else value)
    if number is None:
        return None
    return normalize_number(number.group(0))


def extract_gsm8k_answer(text: str) -> str | None:
    """The final numeric answer of a GSM8K completion, normalised, or None.

    Normalisation drops thousands commas, currency signs, trailing zeros of a
    decimal ('18.00' -> '18') and a sentence-final period. Markers, in order of
    trust: \\boxed{}, '####', '(final|correct) answer is', 'answer is/:'; the
    last occurrence of the strongest marker present wins. Without any marker,
    the last number in the text is the answer. Only the model's own solution
    is read (`own_solution`): an invented next exemplar's answer is not its answer.
    """
    text = own_solution(text)
    if not text:
        return None
    for marker in _GSM8K_MARKERS:
        for tail in reversed([m.group(1) for m in marker.finditer(text)]):
            answer = _number_after_marker(tail)
            if answer is not None:
                return answer
    numbers = _NUMBER_RE.findall(_strip_latex(text))
    return normalize_number(numbers[-1]) if numbers else None


_LETTER_AFTER_MARKER = (
    r"(?:[\(\[\{\*]*([A-D])(?![A-Za-z])"  # capital, maybe bracketed or bold
    r"|[\(\[]([a-d])[\)\]]"  # bracketed lower case: (c)
    r"|\**([a-d])\**(?=\s*[.)!]?\s*$))"  # lone lower case ending the line: 'answer: b'
)
_CONNECTOR = r"(?i:is|:|=|would be|should be)"
_MMLU_MARKERS = [
    # the letter must stand alone: \boxed{Berlin} is choice text, not option B
    re.compile(r"\\boxed\s*\{\s*(?:\\(?:text|textbf|mathrm)\s*\{)?\s*\(?([A-Da-d])(?![A-Za-z])"),
    # 'answer is C' beats a later bare 'Option D ...' reviewing the other options
    *(
        re.compile(
            r"(?i:answer|option|choice)\s*" + connector + r"\s*"
            r"(?i:option|choice|letter)?\s*:?\s*" + _LETTER_AFTER_MARKER,
            re.MULTILINE,
        )
        for connector in (_CONNECTOR, _CONNECTOR + "?")
    ),
]
_BARE_UPPER = re.compile(r"(?:^|[\s\(\[\*])([A-D])(?:[\)\]\*.:,]|\s*$)", re.MULTILINE)
_BRACKETED = re.compile(r"\(([A-D])\)")


def extract_mmlu_answer(text: str, choices: Sequence[str] | None = None) -> str | None:
    """The chosen option letter ('A'-'D') of an MMLU completion, or None.

    Looks for '\\boxed{B}', then 'answer/option/choice is (B)' style markers
    (any case, last one wins; a bare 'Option C' only when no such marker has a
    letter), then a bracketed '(B)', then a lone capital letter at a line
    start. A lower-case letter counts only after a marker and when it stands
    alone ('answer: b', 'option (c)'), so 'the answer is a bit unclear' is not
    read as A. When `choices` are given and no letter is found,
    a marker ('answer is', \\boxed{}) followed by the exact text of one choice
    selects it. Only the model's own solution is read (`own_solution`).
    """
    text = own_solution(text)
    if not text:
        return None
    for marker in _MMLU_MARKERS:
        found = [next(g for g in m.groups() if g) for m in marker.finditer(text)]
        if found:
            return found[-1].upper()
    if choices:
        tail = re.findall(r"(?:answer\s*(?:is|:)\s*|\\boxed\s*\{)([^\n]+)", text, re.IGNORECASE)
        for candidate in reversed(tail):
            candidate = re.sub(r"\\(?:text|textbf|mathrm)\s*\{", "", candidate)
            candidate = candidate.split("}")[0].strip().strip("*.$").strip().lower()
            for index, choice in enumerate(choices):
                if choice and candidate == str(choice).strip().lower():
                    return "ABCD"[index]
    bracketed = _BRACKETED.findall(text)
    if bracketed:
        return bracketed[-1]
    bare = _BARE_UPPER.findall(text)
    return bare[-1] if bare else None
