"""The retrieval index: BM25 (bm25s) over two fields — question with its phrasings, and answer — with
field weights, and filters applied as a mask: an entry not yet in force never answers, regional entries
answer only their region. An entry is current from its effective_from through its effective_until, both days
inclusive, judged on the asker's today; after its end it still answers, but as past (`Hit.current` is false,
the page says since when), and below a current entry on the same words: "2021年月销售额15万元免征吗" deserves
"that relief ended on 2022-12-31", not silence, and never the old rule as if it held today.

Confidence is the winning score over the best score the query's words could reach in this index
(each word's highest contribution to any document, per field, weighted; a word the index has never
seen counts as a rare word missed): 1 means no document could have matched these words better. Below the threshold the answer says so and hands off to a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import bm25s
import numpy as np

from chunfeng.consult.places import region_named
from chunfeng.consult.tokenize import TaxTokenizer, data_file

NATIONAL = "national"
FIELD_WEIGHTS = (1.0, 0.5)  # question + phrasings, answer; chosen on the development half of the evaluation set
RERANK_DEPTH, RERANK_WEIGHT = 10, 0.6  # likewise; Dice over characters and pairs beat query coverage there
COVER_WEIGHT = 1.0  # the share of the question's words an entry speaks of (Index.covered), in the rerank
DENSE_WEIGHT = 0.5  # the optional embedding stage's share in the rerank
# Taken off the rerank score of an entry whose period has ended, and of a measure of the action: a measure is a
# commitment of its year's action, not a rule, so a current knowledge entry on the same subject comes first.
# The measure penalty was measured with the notice and the starter KB (CHANGELOG): at 0.1 eval_fresh3's top-1
# stays 98.0 % and eval.tsv's rises 95.2 → 96.4 %; at 0.15 and above fresh3 loses questions only a measure answers.
PAST_PENALTY, MEASURE_PENALTY = 0.5, 0.1
# Taken off an entry about another tax than the one the question names: "劳务合同个税多少" is not answered by the
# stamp duty on labour contracts, however many of its words that entry shares. The kinds are the names an entry is
# tagged with and the question's words fold to (tokenize: 个税 → 个人所得税); an entry tagged with none is not judged.
# Tried at 0, 0.2, 0.5 and 1.0: the real-phrasing development set's top-1 is the same at each (59.0 %; its one case
# moved, the next entry has no tax tag); at 0.5 and 1.0 eval.tsv rises 94.0 → 95.2 %, the other sets unchanged.
TAX_KIND_PENALTY = 0.5
TAX_KINDS = frozenset("""
个人所得税 增值税 企业所得税 消费税 印花税 契税 房产税 城镇土地使用税 土地增值税 车船税 车辆购置税 城市维护建设税 教育费附加
资源税 环境保护税 耕地占用税 关税 社会保险费 城乡居民医保 文化事业建设费 残疾人就业保障金
""".split())
_GRAM = re.compile(r"[\w\u4e00-\u9fff]")
# What a question asks about its subject: an amount, a time, a way of doing it, whether it holds, what it is. On real
# wording a wrong first answer usually has the question's subject and another of these ("北京居民医保缴费标准是多少钱"
# answered by when to pay, "买二手房需要交多少税" by who pays 契税, "房产税是什么" by when it is paid): an entry whose
# own question and phrasings ask none of the question's ranks below (ASPECT_PENALTY) and answers only with a wider
# lead (services.OTHER_ASPECT_MARGIN_BELOW). From the misses of bench/data/real_phrasings_dev.jsonl. 进项税额, 销项税额 and 应纳税额 are names
# of a thing, not a request for an amount ("进项税额抵扣期限多久" asks a time).
ASPECTS = {
    "amount": re.compile(r"多少|几个点|税率|征收率|费率|标准|比例|额度|限额|几档|怎么算|如何算|怎么计算|如何计算|计算|公式|扣多少|交多少|(?<!进项)(?<!销项)(?<!应纳)税额"),
    "time": re.compile(r"什么时候|何时|多久|多长时间|几月|几号|哪天|期限|截止|时间|几年|几天|几个月|到期|还有吗|执行到"),
    "way": re.compile(r"怎么|如何|怎样|流程|步骤|操作|在哪|哪里|渠道|方式|办理|申请|手续|怎么办"),
    "whether": re.compile(r"吗|能否|能不能|可不可以|是否|要不要|需不需要|需要.{0,8}吗|算不算"),
    "what": re.compile(r"是什么|什么是|什么意思|指什么|指哪些|哪些|包括|区别|有几|几类|几级|几项|分为"),
}
ASPECT_PENALTY = 0.3
# How much of an entry's own question is about what was asked: the rarity-weighted share of its question's words
# (tokenize.words, the title only, not the phrasings) that the asker's question names too. A short general question
# ("印花税的税率多少", "税点一般是多少") was answered by a narrower entry that matched as many of its words and added
# its own case (租赁合同, 9%的业务); this lifts the entry that asks just that. Measured with the rest of the rerank
# fixed: at 0.3 the real-phrasing development top-1 rises 129 → 130 of 181 (two gained, one lost) and the highest
# development coverage at ≥ 90 % precision 116 → 121 answered; eval.tsv and the first two fresh sets unchanged,
# eval_fresh3 96.0 → 95.3 % (one question). At 0.5 development top-1 is 131 but eval_fresh falls 95.5 → 92.7 %.
FOCUS_WEIGHT = 0.3


class Subjects:
    """What a text is about (data/subjects.txt): the taxes, fees, kinds of social insurance and invoices its words
    name, each word folded as the tokenizer folds it; which of them have amounts each province sets; and which holds
    which — a subject whose words are all another's is part of it (医保 of 社保, invoices of VAT), so an entry about the
    whole is about its parts, not the other way round."""

    def __init__(self, text: str, tokenizer: TaxTokenizer):
        self.fold = tokenizer.synonyms
        self.by_word: dict[str, set[str]] = {}
        self.local: set[str] = set()
        words_of: dict[str, set[str]] = {}
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            subject, scope, words = line.split("\t")
            if scope == "各省":
                self.local.add(subject)
            for word in words.split():
                folded = self.fold.get(word, word).lower()
                self.by_word.setdefault(folded, set()).add(subject)
                words_of.setdefault(subject, set()).add(folded)
        self.within = {part: frozenset(whole for whole in words_of if words_of[part] <= words_of[whole])
                       for part in words_of}

    def named(self, words) -> frozenset[str]:
        """The subjects `words` (tokenize.words, or an entry's tags) name."""
        return frozenset(s for w in words for s in self.by_word.get(self.fold.get(w, w).lower(), ()))

    def covers(self, about: frozenset[str], asked: frozenset[str]) -> bool:
        """Is an entry about `about` about every subject of `asked`, itself or a whole it is part of?"""
        return all(self.within[subject] & about for subject in asked)


def aspects(text: str) -> frozenset[str]:
    return frozenset(name for name, pattern in ASPECTS.items() if pattern.search(text))


def character_grams(text: str) -> frozenset[str]:
    chars = _GRAM.findall(text.lower())
    return frozenset(chars) | frozenset(a + b for a, b in zip(chars, chars[1:], strict=False))


@dataclass
class Doc:
    ref: str                  # "kb-0042" or "measure:54"
    source: str               # "kb" or "measure"
    title: str
    answer: str
    basis: str = ""
    measure_no: int | None = None
    year: int | None = None   # a measure's: the year of the action that made the commitment
    region: str = NATIONAL
    effective_from: date | None = None
    effective_until: date | None = None
    tags: list[str] = field(default_factory=list)
    phrasings: list[str] = field(default_factory=list)


@dataclass
class Hit:
    doc: Doc
    score: float
    confidence: float
    current: bool = True  # false: the entry's period ended before the asker's today; it answers as past
    rank: float = 0.0  # the rerank score the order was decided by: the gap to the next hit says how clear the choice was
    covered: float = 1.0  # the share of the question's own words (weighted by rarity) this entry speaks of
    focus: float = 1.0  # the share of the entry's own question's words the question names (FOCUS_WEIGHT)
    aspect: bool = True  # the entry asks what the question asks (ASPECTS), or the question says nothing of it
    subject: bool = True  # the entry is about every subject the question names (Subjects), or it names none
    local: bool = False  # a national entry, asked for a place's amount of a subject each province sets (Subjects.local)


class _Field:
    """One BM25 index over one text field, with each word's best contribution to any document."""

    def __init__(self, corpus: list[list[str]]):
        # numpy, not scipy, builds the matrix: the same scores, and the application does not install scipy.
        self.bm25 = bm25s.BM25(csc_backend="numpy")
        self.bm25.index(corpus, show_progress=False)
        self.vocab: dict[str, int] = self.bm25.vocab_dict
        data, indptr = self.bm25.scores["data"], self.bm25.scores["indptr"]
        self.best = np.zeros(len(indptr) - 1, dtype=np.float32)
        nonempty = np.diff(indptr) > 0
        self.best[nonempty] = np.maximum.reduceat(data, indptr[:-1][nonempty]) if data.size else 0
        # What a word this index has never seen would have been worth: a rare word, so a high score.
        self.unseen = float(np.percentile(self.best[nonempty], 75)) if nonempty.any() else 1.0

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab[t] for t in dict.fromkeys(tokens) if t in self.vocab]

    def reachable(self, ids: list[int], unseen: int) -> float:
        """The best score the query's words could reach here; words no field knows count as missed, so
        "火星上有税务局吗" is not a confident match for whatever mentions 税务局."""
        return float(self.best[ids].sum()) + unseen * self.unseen

    def holding(self, word: str, docs: np.ndarray) -> np.ndarray:
        """Which of `docs` hold `word`: one search of the word's column of the sparse score matrix (its documents,
        in order) for all of them at once."""
        if word not in self.vocab:
            return np.zeros(len(docs), dtype=bool)
        column = self.vocab[word]
        indptr = self.bm25.scores["indptr"]
        held = self.bm25.scores["indices"][indptr[column]:indptr[column + 1]]
        at = np.minimum(np.searchsorted(held, docs), max(len(held) - 1, 0))
        return (held[at] == docs) if len(held) else np.zeros(len(docs), dtype=bool)

    def scores(self, ids: list[int], n: int) -> np.ndarray:
        return self.bm25.get_scores_from_ids(ids) if ids else np.zeros(n, dtype=np.float32)


class Index:
    def __init__(self, docs: list[Doc], tokenizer: TaxTokenizer, weights: tuple[float, float] = FIELD_WEIGHTS,
                 encoder=None):
        if not docs:
            raise ValueError("an index needs at least one document")
        self.docs, self.tokenizer, self.weights = docs, tokenizer, weights
        questions = [tokenizer.tokens(" ".join([d.title, *d.phrasings])) for d in docs]
        answers = [tokenizer.tokens(d.answer) for d in docs]
        self.fields = (_Field(questions), _Field(answers))
        regions = sorted({d.region for d in docs} - {NATIONAL})
        self.region_ids = {NATIONAL: 0, **{r: i for i, r in enumerate(regions, start=1)}}
        self.region = np.array([self.region_ids[d.region] for d in docs], dtype=np.int32)
        self.valid_from = np.array([d.effective_from.toordinal() if d.effective_from else 0 for d in docs], dtype=np.int64)
        self.valid_until = np.array([d.effective_until.toordinal() if d.effective_until else 10**7 for d in docs],
                                    dtype=np.int64)
        self.grams = [[character_grams(t) for t in (d.title, *d.phrasings)] for d in docs]
        self.aspects = [aspects(" ".join([d.title, *d.phrasings])) for d in docs]
        # Each entry's own question's words and their weights (FOCUS_WEIGHT), cut when it is first a candidate:
        # cutting all 50,000 titles up front added about 40 s to the build on a loaded machine. Two threads filling
        # the same key at once compute the same value; nothing else writes it.
        self._title_words: dict[int, dict[str, float]] = {}
        self.subjects = Subjects(data_file("subjects.txt"), tokenizer)
        self._about: dict[int, frozenset[str]] = {}  # each candidate's subjects, cut as its title words are
        # With an encoder (consult.embeddings), each entry's question is also a vector, and the nearest
        # entries by meaning join BM25's candidates in the rerank.
        self.encoder = encoder
        self.vectors = encoder([d.title for d in docs]) if encoder else None

    def __len__(self) -> int:
        return len(self.docs)

    def mask(self, region: str, today: date) -> np.ndarray:
        """What may answer at all: this region's (or national) entries already in force on `today`."""
        in_region = (self.region == 0) | (self.region == self.region_ids.get(region, -1))
        return in_region & (self.valid_from <= today.toordinal())

    def in_force(self, today: date) -> np.ndarray:
        """Current on `today`: both ends inclusive, so an entry ending 2027-12-31 still answers as current that day."""
        day = today.toordinal()
        return (self.valid_from <= day) & (self.valid_until >= day)

    def search(self, query: str, *, region: str = NATIONAL, today: date | None = None, k: int = 5) -> list[Hit]:
        tokens = self.tokenizer.tokens(query)
        n = len(self.docs)
        ids = [f.ids(tokens) for f in self.fields]
        if not any(ids):
            return []
        combined = sum(w * f.scores(i, n) for w, f, i in zip(self.weights, self.fields, ids, strict=True))
        query_grams = character_grams(query)

        def overlap(i: int) -> float:
            return max(2 * len(query_grams & g) / (len(query_grams) + len(g)) for g in self.grams[i])
        return self.ranked(query, tokens, self.tokenizer.words(query), ids, combined, overlap, region=region,
                           today=today or date.today(), k=k)

    def ranked(self, query: str, tokens: list[str], words: list[str], ids: list[list[int]], combined: np.ndarray,
               overlap: Callable[[int], float], *, region: str, today: date, k: int) -> list[Hit]:
        """The one ranking rule, given a query's BM25 sums over all entries and `overlap(i)`, the best Dice of its
        characters and pairs with entry i's question or phrasings: `search` computes those for one query,
        `batch.search_many` for thousands at once, and both rank here."""
        n = len(self.docs)
        if region == NATIONAL:
            region = region_named(query) or NATIONAL
        valid, current = self.mask(region, today), self.in_force(today)
        combined = np.where(valid, combined, 0.0)
        unseen = sum(1 for t in set(tokens) if all(t not in f.vocab for f in self.fields))
        reachable = sum(w * f.reachable(i, unseen) for w, f, i in zip(self.weights, self.fields, ids, strict=True))
        depth = min(max(k, RERANK_DEPTH), n)
        top = np.argpartition(-combined, depth - 1)[:depth]
        top = [int(i) for i in top[np.argsort(-combined[top], kind="stable")] if combined[i] > 0]
        similarity = None
        if self.vectors is not None:
            similarity = np.where(valid, self.vectors @ self.encoder([query])[0], -1.0)
            nearest = np.argpartition(-similarity, depth - 1)[:depth]
            top += [int(i) for i in nearest if int(i) not in top and similarity[i] > 0]
        if not top:
            return []
        # Rerank the best few by how much of the question's wording (characters and pairs) they share
        # with an entry's own question or phrasings: BM25 finds the candidates, wording picks among them.
        best = float(combined[top[0]]) or 1.0
        covered = self.covered(top, words)
        focus = self.focus(top, words)
        named = TAX_KINDS.intersection(words)
        asked = aspects(query)
        subjects = self.subjects.named(words)
        # Like the aspect, the subject judges knowledge entries only: a measure is a commitment named by its item, and
        # answers only questions about the action. A place's amount of a subject each province sets (社保 bases, 车船税): a national entry states the range or
        # the rule, not what this place charges.
        local_amount = region != NATIONAL and "amount" in asked and bool(subjects & self.subjects.local)
        # A measure is a commitment, not an answer to how or when (and the appeals' classification ranks measures by
        # this same rule for complaints, which ask nothing): only knowledge entries are judged by it.
        aspect = {i: not asked or self.docs[i].source != "kb" or bool(asked & self.aspects[i]) for i in top}

        def other_tax(doc: Doc) -> bool:
            kinds = TAX_KINDS.intersection(doc.tags)
            return bool(named and kinds and not named & kinds)

        def reranked(i: int) -> float:
            dense = DENSE_WEIGHT * float(similarity[i]) if similarity is not None else 0.0
            penalty = (0.0 if current[i] else PAST_PENALTY) + (MEASURE_PENALTY if self.docs[i].source == "measure" else 0.0)
            penalty += TAX_KIND_PENALTY if other_tax(self.docs[i]) else 0.0
            penalty += 0.0 if aspect[i] else ASPECT_PENALTY
            return float(combined[i]) / best + RERANK_WEIGHT * overlap(i) + COVER_WEIGHT * covered[i] + FOCUS_WEIGHT * focus[i] + dense - penalty
        ranks = {i: reranked(i) for i in top}
        top.sort(key=ranks.__getitem__, reverse=True)
        return [Hit(self.docs[i], float(combined[i]), min(1.0, float(combined[i]) / reachable) if reachable else 0.0,
                    current=bool(current[i]), rank=ranks[i], covered=covered[i], aspect=aspect[i],
                    focus=focus[i], subject=self.docs[i].source != "kb" or self.subjects.covers(self.about(i), subjects),
                    local=local_amount and self.docs[i].region == NATIONAL)
                for i in top[:k]]

    def about(self, doc: int) -> frozenset[str]:
        """The subjects entry `doc` is about: those its own question and its tags name. Its phrasings and answer
        mention neighbouring subjects in passing (a farmer's VAT entry says what 个税 does not tax), so they do not
        count. Cut when it is first a candidate, as its title words are."""
        about = self._about.get(doc)
        if about is None:
            if doc not in self._title_words:
                self._title_words[doc] = self._weighted_title(doc)
            about = self._about[doc] = self.subjects.named([*self._title_words[doc], *self.docs[doc].tags])
        return about

    def focus(self, docs: list[int], words: list[str]) -> dict[int, float]:
        """For each of `docs`, the share of its own question's words (weighted by rarity, as in `covered`) that
        the asker's `words` name: 1 when the entry asks about nothing the question leaves out."""
        asked, shares = set(words), {}
        for doc in docs:
            own = self._title_words.get(doc)
            if own is None:
                own = self._title_words[doc] = self._weighted_title(doc)
            total = sum(own.values())
            shares[doc] = sum(w for word, w in own.items() if word in asked) / total if total else 1.0
        return shares

    def _weighted_title(self, doc: int) -> dict[str, float]:
        questions = self.fields[0]
        return {w: float(questions.best[questions.vocab[w]]) if w in questions.vocab else questions.unseen
                for w in self.tokenizer.words(self.docs[doc].title)}

    def covered(self, docs: list[int], words: list[str]) -> dict[int, float]:
        """For each of `docs`, the share of the question's words it speaks of (in its question, phrasings or answer),
        each word weighted by its best score in the question field (a rare word weighs more; an unknown word weighs
        as a rare one). A wrong answer on real wording is usually one that leaves a word of the question out
        ("个体户普票几个点" answered with the business-income brackets, which never mention 普票)."""
        if not words or not docs:
            return dict.fromkeys(docs, 1.0)
        questions, candidates = self.fields[0], np.asarray(docs, dtype=np.int64)
        weights = np.array([questions.best[questions.vocab[w]] if w in questions.vocab else questions.unseen
                            for w in words], dtype=np.float64)
        found = np.array([np.logical_or.reduce([f.holding(w, candidates) for f in self.fields]) for w in words])
        shares = weights @ found / (weights.sum() or 1.0)
        return {doc: float(share) for doc, share in zip(docs, shares, strict=True)}
