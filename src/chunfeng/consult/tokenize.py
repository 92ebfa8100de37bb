"""Chinese tokens for retrieval: jieba with a tax-domain dictionary, then synonyms folded to one word.

The tokenizer is built once per process (jieba's dictionary takes a moment to load) and is safe to
share: it keeps its own jieba.Tokenizer rather than jieba's global one.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from importlib import resources

import jieba

from chunfeng.consult.places import is_place

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w\u4e00-\u9fff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
# Words that occur in nearly every question and say nothing about which one it is.
STOPWORDS = frozenset("""
的 了 吗 呢 吧 啊 呀 么 嘛 是 我 我们 你 你们 他 她 它 请问 请 问 一下 怎么 怎样 如何 什么 哪些 哪个 哪里 多少 可以 能 能否
能不能 可不可以 是否 有没有 需要 要 想 在 和 与 及 或 或者 还是 就 都 也 还 又 这个 那个 这 那 有 没有 会 该 应该 吗? 啥
咋 咋样 一个 个 吗？ 呢？ 谁 为什么 为啥 现在 目前 时候 如果 的话 要不要 哪 么样 还有 以及 对于 关于 进行 相关 方面 情况 多少钱
""".split())
# Words real questions add around their subject ("…的计算公式", "最新规定", "2021年…"): they say how the asker
# wants it put, not which answer it is, so an answer need not contain them (from bench/data/real_phrasings_dev.jsonl).
# The action's own name and "承诺/措施" mark a question as one about the action (services.about_the_action), not a
# word its answer must repeat.
GENERIC = frozenset("""
计算 计算公式 公式 标准 规定 最新 最新版 政策 年 意思 包括 算 怎么算 一般 具体 问题 文件 内容 方法 收费 时间 一次 几个
新规 最新规定 优惠政策 计算方法 标准表 收费标准 流程 步骤 操作 手续 怎么办
春风 行动 春风行动 承诺 措施 举措
多久 多长时间 日期 每年 一年 几年 几月 几月份 几个月 几级 几档 几项 最长 超过 以下 以上 截止 网上 线上 处理 办理
申请 开具 审批 信息 规定 有关 缴税 比例 计税 档次 缴纳 实施 施行 要交
""".split())
# A count, a span or a sum the question names ("六项", "几档", "三年", "一万元"): what is asked (index.ASPECTS) or
# its case, not a word its answer repeats — the answer says "七项", "1500元", "240个月", "1万元". 缴税 (交税, 纳税)
# above is the verb around every tax question ("彩票中奖要交税吗"), as 交 and 办 are.
_COUNT = re.compile(r"^[几一二三四五六七八九十两百千万多]+(?:项|档|级|类|种|个|年|月|月份|天|日|次|个月|套|份|元|万元|块|块钱)?$")


def data_file(name: str) -> str:
    return resources.files("chunfeng.consult").joinpath("data", name).read_text(encoding="utf-8")


class TaxTokenizer:
    def __init__(self, dictionary: str | None = None, synonyms: str | None = None, rewrites: str | None = None):
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self.synonyms: dict[str, str] = {}
        dictionary = data_file("tax_dict.txt") if dictionary is None else dictionary
        synonyms = data_file("synonyms.txt") if synonyms is None else synonyms
        rewrites = data_file("rewrites.txt") if rewrites is None else rewrites
        self.rewrites = [(re.compile(pattern), replacement) for line in rewrites.splitlines()
                         if line.strip() and not line.startswith("#") for pattern, replacement in [line.split("\t", 1)]]
        for line in dictionary.splitlines():
            parts = line.split()
            if parts:
                self._jieba.add_word(parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None)
        for line in synonyms.splitlines():
            words = [w.strip() for w in line.replace("，", ",").split(",") if w.strip()]
            for word in words:
                self.synonyms[word] = words[0]
                self._jieba.add_word(word)  # a synonym must come out of jieba whole to be folded
        with self._lock:
            self._jieba.initialize()

    def rewritten(self, text: str) -> str:
        """The question in lower case with its colloquial forms in the knowledge base's words (data/rewrites.txt)."""
        text = text.lower()
        for pattern, replacement in self.rewrites:
            text = pattern.sub(replacement, text)
        return text

    def words(self, text: str) -> list[str]:
        """The question's own words once each (jieba's precise mode, synonyms folded; stopwords, numbers, GENERIC
        words, places and single characters — 办, 交, 开: the verbs around the subject — dropped): what an answer must
        speak of to be the answer (index.Hit.covered)."""
        with self._lock:
            cut = self._jieba.lcut(self.rewritten(text))
        return list(dict.fromkeys(w for w in (self.synonyms.get(w, w) for w in cut)
                                  if len(w) > 1 and w not in STOPWORDS and w not in GENERIC and _HAN.search(w)
                                  and not is_place(w) and not _COUNT.match(w)))

    def tokens(self, text: str) -> list[str]:
        """Search-mode words (longer words also yield their parts), synonyms folded, stopwords dropped,
        then every pair of adjacent Chinese characters: the pairs catch paraphrases that jieba
        segments differently (on the evaluation set: top-1 0.78 → 0.81, top-3 0.88 → 0.95)."""
        text = self.rewritten(text)
        words = [self.synonyms.get(w, w) for w in self._jieba.lcut_for_search(text) if w not in STOPWORDS and _WORD.search(w)]
        chars = _HAN.findall(text)
        return words + [pair for a, b in zip(chars, chars[1:], strict=False) if (pair := a + b) not in STOPWORDS]


_shared_lock = threading.Lock()


def shared_tokenizer() -> TaxTokenizer:
    # Locked: the first callers at once (the indexes built at start-up, a first request) would each load jieba.
    with _shared_lock:
        return _shared()


@lru_cache(maxsize=1)
def _shared() -> TaxTokenizer:
    return TaxTokenizer()
