"""Answer extraction on realistic 7B-model completions (hand-written, no model).

Each case is a completion in a style seen from base models prompted few-shot
("... The answer is 18.") or from chat models answering zero-shot (markdown,
LaTeX, restated drafts), paired with the answer a human grader would read.
"""

from __future__ import annotations

import pytest

from lm_routing_tasks.extraction import extract_gsm8k_answer, extract_mmlu_answer, normalize_number

P = pytest.param

GSM8K_CASES = [
    # --- few-shot base-model style -------------------------------------------
    P("Natalia sold 48 / 2 = 24 clips in May. Natalia sold 48 + 24 = 72 clips altogether "
      "in April and May. The answer is 72.", "72", id="fewshot-answer-is"),
    P("Weng earns 12 / 60 = 0.2 per minute. Working 50 minutes, she earned 0.2 x 50 = 10. "
      "The answer is 10", "10", id="fewshot-no-trailing-period"),
    P("Betty has 100 / 2 = 50 dollars. Her grandparents gave her 15 * 2 = 30 dollars. "
      "She needs 100 - 50 - 30 - 15 = 5 more. the answer is 5.", "5", id="fewshot-lowercase"),
    P("There are 15 trees originally. Then there were 21 trees after some more were planted. "
      "So there must have been 21 - 15 = 6. The answer is 6.", "6", id="fewshot-subtraction"),
    P("He runs 3 sprints 3 times a week, so 3 * 3 = 9 sprints. Each is 60 meters, so "
      "9 * 60 = 540 meters. So the answer is 540 meters.", "540", id="fewshot-unit-meters"),
    P("It takes 2 hours to paint one room and there are 5 rooms left... wait, 2 of them are "
      "done, so 3 rooms * 2 = 6 hours. The answer is 6 hours.", "6", id="fewshot-unit-hours"),
    P("Each ticket is $18 and they buy 1 ticket each for 1 adult. The answer is 18 dollars.",
      "18", id="fewshot-unit-dollars"),
    P("The temperature dropped from 4 to -3 degrees, so it is -3 at night. The answer is -3.",
      "-3", id="negative"),
    P("She lost 7 dollars on the first bet and won 2 on the second, so her net change is "
      "-7 + 2 = -5. The answer is -$5.", "-5", id="negative-dollar"),
    P("The pen costs 1.50 / 3 = 0.50 per pen. The answer is 0.50.", "0.5", id="decimal-trailing-zero"),
    P("Total is 6 * 3.00 = 18.00. The answer is $18.00.", "18", id="decimal-zero-cents"),
    P("So the average is 36 / 2 = 18.0. The answer is 18.0", "18", id="decimal-point-zero"),
    P("Each slice costs 12.5 / 5 = 2.5 dollars. The answer is 2.5.", "2.5", id="decimal-trailing-period"),
    P("The answer is .75", "0.75", id="decimal-no-leading-zero"),
    P("He makes 1,250 * 12 = 15,000 a year. The answer is 15,000.", "15000", id="thousands-comma"),
    P("The house was bought for $80,000 and he put in $50,000 of repairs, so the value is "
      "$1,234,567. The answer is $1,234,567.", "1234567", id="thousands-millions"),
    P("Interest is 1,000 * 0.05 = 50.25. The answer is $1,050.25.", "1050.25", id="thousands-and-cents"),
    P("20 out of 80 students is 20 / 80 = 0.25, i.e. 25%. The answer is 25%.", "25", id="percent"),
    P("The discount is 12.5% of the price. The answer is 12.5%", "12.5", id="percent-decimal"),
    P("The answer is three.", "3", id="number-word"),
    P("The answer is twenty-five.", "25", id="number-word-hyphenated"),
    P("So the answer is one hundred.", "100", id="number-word-hundred"),
    P("She has twelve eggs left. The answer is twelve eggs.", "12", id="number-word-unit"),
    P("The answer is 7 and the remaining 3 cookies go to the dog.", "7", id="first-number-after-marker"),
    # --- GSM8K reference style ------------------------------------------------
    P("She eats 3 and bakes 4, so 16 - 3 - 4 = 9 eggs are left.\n9 * 2 = 18\n#### 18",
      "18", id="hashes"),
    P("So he pays 60 + 12 = 72 dollars.\n####72", "72", id="hashes-no-space"),
    P("Total = 1,200 + 50 = 1,250\n#### 1,250", "1250", id="hashes-thousands"),
    P("The cost is 9 * 2 = $18.\n#### $18.00", "18", id="hashes-dollar-decimal"),
    P("The first answer is 12 but wait.\n#### 14", "14", id="hashes-beat-answer-is"),
    # --- chat models with markdown ---------------------------------------------
    P("Sure! Let's break it down step by step.\n\n1. **Eggs laid per day:** 16\n"
      "2. **Eggs used:** 3 + 4 = 7\n3. **Eggs sold:** 16 - 7 = 9\n4. **Money:** 9 x $2 = $18\n\n"
      "**Answer:** $18", "18", id="markdown-answer-dollar"),
    P("### Step 1\nShe has 5 bags with 6 apples each: 5 x 6 = 30.\n\n### Step 2\nShe gives away "
      "12: 30 - 12 = 18.\n\n**Final Answer:** 18 apples", "18", id="markdown-final-answer-unit"),
    P("Let me solve this.\n\n- Monday: 5 miles\n- Tuesday: 7 miles\n\nThe answer is: **12**",
      "12", id="markdown-bold-number"),
    P("**Answer:**\n\nJanet makes **$18** every day at the market.", "18",
      id="markdown-answer-on-next-line"),
    P("Here's the breakdown:\n- Red marbles: 3\n- Blue marbles: 5\n\nSo in total she has:\n"
      "- 8 marbles", "8", id="markdown-bullet-not-negative"),
    P("**Answer: 42 cupcakes**\n\nI hope this helps! Let me know if you have any other questions "
      "about steps 1 through 3.", "42", id="markdown-answer-then-chatter"),
    P("Therefore, the final answer is 54. I hope it is correct.", "54", id="final-answer-is"),
    P("Final Answer: The final answer is $35$. I hope it is correct.", "35", id="minerva-style"),
    P("Total hours = 4 * 5 = 20\n\nFinal answer: 20", "20", id="final-answer-colon"),
    P("So the correct answer is 6 apples.", "6", id="correct-answer-is"),
    P("ANSWER: 64", "64", id="answer-uppercase"),
    P("answer = 8 * 4 = 32", "32", id="answer-equals-expression"),
    P("So the answer is 20 - 8 = 12.", "12", id="answer-is-equation"),
    P("Therefore, the answer is \\(18\\).", "18", id="latex-inline-parens"),
    P("The answer is $\\$45$.", "45", id="latex-escaped-dollar"),
    P("Final answer: \\$ 1,500", "1500", id="latex-escaped-dollar-space-thousands"),
    # --- LaTeX \\boxed ---------------------------------------------------------
    P("Adding these gives $16 + 2 = 18$.\n\n\\[\n\\boxed{18}\n\\]", "18", id="boxed"),
    P("The total savings are $\\boxed{\\$1,000}$.", "1000", id="boxed-dollar"),
    P("So the plan costs \\boxed{1{,}200} dollars.", "1200", id="boxed-latex-thousands"),
    P("The remaining fraction is $\\boxed{\\frac{3}{4}}$.", "0.75", id="boxed-frac"),
    P("Each friend gets $\\boxed{\\dfrac{1}{2}}$ of a pizza.", "0.5", id="boxed-dfrac"),
    P("The change in height is $\\boxed{-5}$ meters.", "-5", id="boxed-negative"),
    P("He walks $\\boxed{18 \\text{ miles}}$ in total.", "18", id="boxed-text-unit"),
    P("The final answer is: $\\boxed{25\\%}$", "25", id="boxed-percent"),
    P("The answer is 12.\n\nHmm, but I forgot the tax: $\\boxed{14}$", "14", id="boxed-beats-answer-is"),
    P("First guess: $\\boxed{10}$. Re-checking the second step, it should be $\\boxed{12}$.",
      "12", id="boxed-last-wins"),
    P("$\\boxed{}$\nThe answer is 9.", "9", id="boxed-empty-falls-through"),
    # --- several numbers / restated drafts --------------------------------------
    P("The answer is 12.\nWait, I forgot the 2 extra pencils she bought on Friday. "
      "12 + 2 = 14. The answer is 14.", "14", id="restated-draft-two-lines"),
    P("I first thought the answer is 12, but I forgot the 2 extra pencils, so the answer is 14.",
      "14", id="restated-draft-same-line"),
    P("Answer: 30. Hmm, that double-counts the weekend. Correct total: 30 - 4 = 26. Answer: 26",
      "26", id="restated-answer-colon-same-line"),
    P("She reads 10 pages on day 1, 20 on day 2 and 30 on day 3, so 10 + 20 + 30 = 60 pages.",
      "60", id="no-marker-last-number"),
    P("So he has 5 + 7 = 12 marbles.", "12", id="no-marker-trailing-period"),
    P("Each box holds 24 pens, and 3 boxes hold 24 * 3 = 72 pens. That costs $3.50.",
      "3.5", id="no-marker-decimal-period"),
    P("Total: 1,000 + 2,500 = 3,500", "3500", id="no-marker-thousands"),
    # --- no answer / degenerate -----------------------------------------------
    P("", None, id="empty"),
    P("I'm sorry, but I need more information to solve this problem.", None, id="no-number"),
    P("The answer is unclear from the question.", None, id="marker-without-number"),
    P("The answer is 8. The answer is 8. The answer is 8. The answer is 8. The answer is",
      "8", id="degenerate-repetition-truncated"),
    P("He has 5 apples. He has 5 apples. He has 5 apples. He has 5 apples. He has 5",
      "5", id="degenerate-repetition-no-marker"),
    P("So he needs 9 more. The answer is 9.\n\nQ: A baker makes 24 muffins and sells 18. "
      "How many are left?\nA: 24 - 18 = 6. The answer is 6.", "9",
      id="continues-into-new-question-own-answer-wins"),
]

MMLU_CASES = [
    # --- few-shot base-model style -------------------------------------------
    P("The capital of France is Paris. The answer is (B).", "B", id="answer-is-bracketed"),
    P("Mitochondria produce ATP through respiration. The answer is (C)", "C", id="answer-is-bracketed-no-period"),
    P("Answer: b", "B", id="answer-colon-lowercase"),
    P("The answer is (c) since the other options contradict the premise.", "C",
      id="lowercase-bracketed-then-reason"),
    P("let's think. photosynthesis needs light. the answer is (c).", "C", id="all-lowercase"),
    P("The correct option is C.", "C", id="correct-option-is"),
    P("The answer is option D", "D", id="answer-is-option"),
    P("The answer would be option A.", "A", id="answer-would-be-option"),
    P("So the answer should be C.", "C", id="answer-should-be"),
    P("The best choice is B.", "B", id="best-choice-is"),
    P("Correct Answer: D", "D", id="correct-answer-colon"),
    P("Final answer: A", "A", id="final-answer-colon"),
    P("My answer is C.", "C", id="my-answer-is"),
    P("The answer is A.", "A", id="answer-is-capital-a"),
    P("The answer is C) 42", "C", id="answer-letter-paren-value"),
    P("Answer: (A) 1.5 m/s", "A", id="answer-bracketed-with-value"),
    P("I think the answer is B, because the Treaty was signed in 1648.", "B", id="answer-letter-comma"),
    P("the answer is d", "D", id="lowercase-bare-letter"),
    P("The answer is: \n\nB", "B", id="answer-colon-newline-letter"),
    P("Answer : C", "C", id="answer-space-colon"),
    P("Answer: Option B", "B", id="answer-colon-option"),
    P("The answer is [C].", "C", id="square-brackets"),
    # --- chat models with markdown ---------------------------------------------
    P("**C**", "C", id="bold-letter-only"),
    P("The answer is **B**.", "B", id="answer-is-bold"),
    P("The correct answer is: **B. Mitochondria**", "B", id="bold-letter-and-text"),
    P("**Answer: D**", "D", id="bold-answer-colon"),
    P("**Answer:** (A)", "A", id="bold-marker-bracketed"),
    P("I believe the correct answer is **(D) 4**.", "D", id="bold-bracketed-with-value"),
    P("### Answer\nC", "C", id="markdown-heading-then-letter"),
    P("Great question! Let's analyze each option:\n\n- **A. London** - capital of the UK.\n"
      "- **B. Paris** - correct!\n- **C. Berlin** - capital of Germany.\n- **D. Madrid** - "
      "capital of Spain.\n\n**Answer: B**", "B", id="markdown-option-review"),
    P("The correct answer is B.\n\nLet's look at the other options:\n- Option A is wrong because "
      "it ignores friction.\n- Option C overstates the force.\n- Option D confuses mass and weight.",
      "B", id="answer-then-review-of-other-options"),
    P("Answer: C\n\nExplanation: option A is a distractor and option B confuses the terms.",
      "C", id="answer-then-explanation-options"),
    P("Option A is incorrect. Option C is correct.", "C", id="option-letter-is-correct"),
    P("B. Paris\n\nParis has been the capital of France since the 10th century.", "B",
      id="letter-dot-text-line-start"),
    P("Between options A and C, I would choose C.", "C", id="bare-letter-end-of-sentence"),
    P("B", "B", id="single-letter"),
    P(" D", "D", id="single-letter-leading-space"),
    P("A\n\nExplanation: The heart has four chambers.", "A", id="letter-then-explanation"),
    # --- LaTeX \\boxed ---------------------------------------------------------
    P("Therefore the answer is $\\boxed{A}$.", "A", id="boxed-letter"),
    P("$\\boxed{\\text{(B)}}$", "B", id="boxed-text-bracketed"),
    P("So the answer is \\(\\boxed{\\text{C}}\\).", "C", id="boxed-text-letter"),
    P("\\boxed{\\textbf{C}}", "C", id="boxed-textbf-letter"),
    P("\\boxed{C. Paris}", "C", id="boxed-letter-with-text"),
    P("The answer is (B).\n\nOn reflection, $\\boxed{D}$", "D", id="boxed-beats-answer-is"),
    P("\\boxed{b}", "B", id="boxed-lowercase"),
    P("The capital of Germany is \\boxed{Berlin}.", None, id="boxed-word-without-choices"),
    # --- drafts, several letters ------------------------------------------------
    P("At first glance the answer might seem to be (A), but the question asks about the second "
      "law, not the first. Therefore, the answer is (C).", "C", id="restated-draft"),
    P("Answer: A\n\nWait, let me reconsider. The enzyme is inhibited, not activated.\n\nAnswer: C",
      "C", id="restated-answer-colon"),
    P("The answer is (B) and not (C).", "B", id="answer-then-rejected-option"),
    P("Both (A) and (B) are partly right, but (D) covers both cases.", "D", id="bracketed-last-wins"),
    P("the answer is a bit unclear, since the passage is ambiguous, but I lean towards (D).",
      "D", id="article-a-not-option"),
    P("The answer is a matter of definition; most textbooks would go with (B).", "B",
      id="article-a-then-bracketed"),
    # --- no answer / degenerate -----------------------------------------------
    P("", None, id="empty"),
    P("I'm not sure. I cannot determine this without more information.", None, id="no-letter"),
    P("None of the above seem correct to me.", None, id="none-of-the-above"),
    P("A good approach is to compare each statement with the definition of entropy.", None,
      id="article-a-at-line-start"),
    P("The answer is (A). The answer is (A). The answer is (A). The answer is (A). The answer",
      "A", id="degenerate-repetition"),
    P("B B B B B B B B B B B B", "B", id="degenerate-letter-repetition"),
    P("The answer is (B).\n\nQuestion: Which planet is largest?\nA. Mars\nB. Venus\nC. Earth\n"
      "D. Jupiter\nAnswer: D", "B", id="continues-into-new-question-own-answer-wins"),
]

CHOICES = ["London", "Paris", "Berlin", "Madrid"]

MMLU_CHOICE_CASES = [
    P("The capital of France is Paris. The answer is Paris.", CHOICES, "B", id="choices-text-answer"),
    P("**Answer:** Madrid", CHOICES, "D", id="choices-bold-marker"),
    P("Answer: berlin.", CHOICES, "C", id="choices-lowercase"),
    P("The answer is (B) Paris", CHOICES, "B", id="choices-letter-wins"),
    P("The answer is Argon.", ["Carbon dioxide", "Oxygen", "Nitrogen", "Argon"], "D",
      id="choices-text-starting-with-option-letter"),
    P("The answer is Carbon dioxide.", ["Carbon dioxide", "Oxygen", "Nitrogen", "Argon"], "A",
      id="choices-text-starting-with-c"),
    P("Answer: 12", ["10", "12", "14", "16"], "B", id="choices-numeric-value"),
    P("The order of the group is $\\boxed{12}$.", ["10", "12", "14", "16"], "B",
      id="choices-boxed-numeric-value"),
    P("The neurotransmitter is $\\boxed{\\text{Dopamine}}$.",
      ["Dopamine", "Serotonin", "GABA", "Acetylcholine"], "A", id="choices-boxed-text-not-letter-d"),
    P("The capital of Germany is $\\boxed{\\text{Berlin}}$.", CHOICES, "C",
      id="choices-boxed-text-not-letter-b"),
    P("The answer is Rome.", CHOICES, None, id="choices-no-match"),
]


@pytest.mark.parametrize(("completion", "expected"), GSM8K_CASES)
def test_extract_gsm8k_answer(completion, expected):
    assert extract_gsm8k_answer(completion) == expected


@pytest.mark.parametrize(("completion", "expected"), MMLU_CASES)
def test_extract_mmlu_answer(completion, expected):
    assert extract_mmlu_answer(completion) == expected


@pytest.mark.parametrize(("completion", "choices", "expected"), MMLU_CHOICE_CASES)
def test_extract_mmlu_answer_with_choices(completion, choices, expected):
    assert extract_mmlu_answer(completion, choices=choices) == expected


def test_corpus_sizes_and_ids_are_distinct():
    for cases in (GSM8K_CASES, MMLU_CASES + MMLU_CHOICE_CASES):
        ids = [case.id for case in cases]
        assert len(ids) == len(set(ids))
        assert len({case.values[0] for case in cases}) == len(cases)
    assert len(GSM8K_CASES) >= 65
    assert len(MMLU_CASES) + len(MMLU_CHOICE_CASES) >= 65


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        P("$1,234.50", "1234.5", id="dollar-thousands-cents"),
        P("18.0", "18", id="point-zero"),
        P("18.00", "18", id="point-zero-zero"),
        P("0.50", "0.5", id="leading-zero-decimal"),
        P(".5", "0.5", id="bare-decimal"),
        P("-$5", "-5", id="negative-dollar"),
        P("$-5", "-5", id="dollar-negative"),
        P("-0.0", "0", id="negative-zero"),
        P("007", "7", id="leading-zeros"),
        P("100", "100", id="trailing-integer-zeros-kept"),
        P("It costs $ 45 in total", "45", id="embedded-with-space"),
        P("no digits here", None, id="no-number"),
    ],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected
