"""Label answers from issue 12, in English and Chinese, for every packaged label set: echoed option
lists, leading yes/no vs an explicit label, plurals, negation, synonyms, competing labels."""

from __future__ import annotations

import pytest

from affectbench.prompts import load_prompt

from ._infos import IEMOCAP4, IEMOCAP6, MELD, MELD_SENT, MUSTARD, SENT2, URFUNNY

MELD_LIST = "neutral, surprise, fear, sadness, joy, disgust, anger"

# (dataset, answer, right value; a str in UNREAD = unread for that reason)
UNREAD = {"ambiguous", "no_label", "refused", "empty", "truncated", "reasoning_only"}
CASES = [
    # --- issue 12, observed
    (MELD, "neutral, joy, …, disgust\n\nsurprise", "surprise"),
    (MELD, f"{MELD_LIST}\n\nsurprise", "surprise"),
    (MUSTARD, "No doubt, the speaker is sarcastic.", "sarcastic"),
    (MELD_SENT, "Negatives", "negative"),
    (SENT2, "不是积极的", "negative"),
    (MELD_SENT, "不是积极的", "ambiguous"),  # 3-way: negative or neutral is left open
    (MUSTARD, "讽刺", "sarcastic"),
    (MUSTARD, "不是讽刺", "sincere"),
    (MELD, "快乐", "joy"),
    (MELD, "愤怒", "anger"),
    (MELD, "joy, surprise", "ambiguous"),
    # --- echoed option lists are not answers
    (MELD, f"Options: {MELD_LIST}.", "ambiguous"),
    (MELD, f"The options are {MELD_LIST}. The speaker sounds sad.", "sadness"),
    (MUSTARD, "sarcastic or sincere? Sincere.", "sincere"),
    (URFUNNY, "humorous / not humorous\nhumorous", "humorous"),
    (MELD_SENT, "negative, neutral, positive\nAnswer: positive", "positive"),
    (IEMOCAP6, "happy, sad, neutral, angry, excited, frustrated -> frustrated", "frustrated"),
    # --- leading yes/no must not beat an explicit label
    (MUSTARD, "No question about it: sarcastic.", "sarcastic"),
    (MUSTARD, "Yes and no... on balance the speaker is sincere.", "sincere"),
    (URFUNNY, "No wonder the audience laughed: it is humorous.", "humorous"),
    (MUSTARD, "No.", "sincere"),
    (MUSTARD, "是的。", "sarcastic"),
    (MUSTARD, "否", "sincere"),
    # --- plurals and inflections
    (MELD_SENT, "Positives outweigh everything.", "positive"),
    (SENT2, "negatives", "negative"),
    (MUSTARD, "Sarcastically.", "sarcastic"),
    (MELD, "Surprised!", "surprise"),
    # --- leading label then explanation mentioning other labels
    (MELD, "Anger. The speaker is not sad, she raises her voice in rage.", "anger"),
    (IEMOCAP4, "Sad\n\nThe low voice rules out happy or angry.", "sad"),
    # --- competing labels with no cue are refused; a cue decides
    (MELD, "It could be joy or surprise.", "ambiguous"),
    (MELD, "The face shows surprise while the voice shows joy.", "ambiguous"),
    (MELD, "The face shows surprise while the voice shows joy. Overall: joy", "joy"),
    (MELD, "Answer: joy or surprise", "ambiguous"),
    (IEMOCAP6, "1. happy\n2. excited", "ambiguous"),
    (MELD_SENT, "Positive words, negative tone. Final answer: negative", "negative"),
    (MELD, "The speaker is not angry but sad.", "sadness"),
    # --- a hedged mention is secondary
    (MELD, "The speaker seems happy, though there may be a hint of surprise.", "joy"),
    (MELD_SENT, "Mostly neutral, maybe slightly negative.", "neutral"),
    (IEMOCAP6, "She is frustrated with a touch of sadness in her voice.", "frustrated"),
    (MELD, "说话者很开心，略带一丝惊讶", "joy"),
    (MELD, "Maybe sad, maybe angry.", "ambiguous"),
    (MELD, "Sad and angry at the same time.", "ambiguous"),
    # --- MELD emotion, Chinese
    (MELD, "说话者很高兴。", "joy"),
    (MELD, "情绪：惊讶", "surprise"),
    (MELD, "答案：恐惧", "fear"),
    (MELD, "她听起来很伤心", "sadness"),
    (MELD, "厌恶", "disgust"),
    (MELD, "中性", "neutral"),
    (MELD, "说话者非常开心", "joy"),  # 非常 = very, not a negation
    (MELD, "不是愤怒，而是悲伤", "sadness"),
    (MELD, "不愤怒", "ambiguous"),  # six emotions left
    (MELD, "可能是快乐也可能是惊讶", "ambiguous"),
    (MELD, "综合来看，最终答案：生气", "anger"),
    # --- IEMOCAP 4 and 6, English and Chinese
    (IEMOCAP6, "兴奋", "excited"),
    (IEMOCAP6, "沮丧", "frustrated"),
    (IEMOCAP6, "开心", "happy"),
    (IEMOCAP6, "Frustrations", "frustrated"),
    (IEMOCAP4, "生气", "angry"),
    (IEMOCAP4, "难过", "sad"),
    (IEMOCAP4, "平静", "neutral"),
    (IEMOCAP4, "高兴", "happy"),
    (IEMOCAP4, "The speaker is angry, not happy.", "angry"),
    # --- sentiment 2- and 3-way
    (MELD_SENT, "消极", "negative"),
    (MELD_SENT, "正面", "positive"),
    (MELD_SENT, "中性", "neutral"),
    (MELD_SENT, "既不积极也不消极", "neutral"),
    (MELD_SENT, "情感是负面的", "negative"),
    (MELD_SENT, "not positive", "ambiguous"),
    (SENT2, "not positive", "negative"),
    (SENT2, "并不消极", "positive"),
    (SENT2, "积极", "positive"),
    (MELD_SENT, "The sentiment is hard to call.", "no_label"),
    # --- MUStARD sarcasm, Chinese
    (MUSTARD, "说话者在讽刺。", "sarcastic"),
    (MUSTARD, "这是反讽", "sarcastic"),
    (MUSTARD, "说话者是真诚的", "sincere"),
    (MUSTARD, "没有讽刺的意思", "sincere"),
    (MUSTARD, "我不认为是讽刺", "sincere"),
    (MUSTARD, "并不真诚", "sarcastic"),
    (MUSTARD, "非讽刺", "sincere"),
    (MUSTARD, "不是。", "sincere"),
    # --- UR-FUNNY humour, English and Chinese
    (URFUNNY, "幽默", "humorous"),
    (URFUNNY, "很好笑", "humorous"),
    (URFUNNY, "不幽默", "not humorous"),
    (URFUNNY, "并不好笑", "not humorous"),
    (URFUNNY, "这句话不搞笑", "not humorous"),
    (URFUNNY, "没有笑点", "not humorous"),
    (URFUNNY, "Not funny at all.", "not humorous"),
    (URFUNNY, "Jokes like this always land: humorous.", "humorous"),
    # --- refusals and nothing
    (MELD, "抱歉，我无法判断说话者的情绪。", "refused"),
    (MUSTARD, "I'm sorry, I can't tell.", "refused"),
    (MELD, "<think>hmm</think>", "reasoning_only"),
    (MELD, "<think>hmm, joy or", "truncated"),
    (MELD, "", "empty"),
]


@pytest.mark.parametrize(("info", "text", "expected"), CASES, ids=[f"{c[0].corpus}:{c[1][:40]!r}" for c in CASES])
def test_label_table(info, text, expected):
    parsed = load_prompt("default", info).parse(text, info)
    if expected in UNREAD:
        assert not parsed.ok and parsed.value is None, parsed
        assert parsed.unread == expected, parsed
    else:
        assert parsed.ok, parsed
        assert parsed.value == expected, parsed


def test_every_label_set_has_chinese_answers():
    sets = {info.corpus for info, text, _ in CASES if any("\u4e00" <= ch <= "\u9fff" for ch in text)}
    assert {
        MELD.corpus,
        MELD_SENT.corpus,
        SENT2.corpus,
        IEMOCAP4.corpus,
        IEMOCAP6.corpus,
        MUSTARD.corpus,
        URFUNNY.corpus,
    } <= sets
