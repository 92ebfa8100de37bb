"""A reproducible synthetic taxpayer extract: the four tables of `schema`, at any size up to 100 million taxpayers.

Rows are made in chunks of CHUNK taxpayers with numpy, each chunk from its own random stream, and appended to
one Parquet or CSV file per table, so memory stays flat and the same seed and count give the same files.
Strings are assembled column-wise with pyarrow (lookups and element-wise joins): a Python loop per row would
take minutes at 10 million.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from chunfeng.push.schema import (
    CHANNELS,
    CLAIMS,
    CONTACT_ROLES,
    CONTACTS,
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_WEIGHTS,
    CREDIT_RATINGS,
    FILINGS,
    REGISTRY,
    SIZES,
    VAT_TYPES,
    Table,
)

CHUNK = 1_000_000
MAX_TAXPAYERS = 100_000_000  # far below the 31^8 organisation codes; a guard against a typo'd count

# Province code, weight, prefecture-level cities. A city's position (from 01) is its code within the province:
# right for most cities, and plausible for the rest. Municipalities have one entry, code 01 (市辖区).
PROVINCES = (
    (11, 3, "北京"), (12, 2, "天津"), (13, 4, "石家庄 唐山 秦皇岛 邯郸 邢台 保定 张家口 承德 沧州 廊坊 衡水"),
    (14, 2, "太原 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁"),
    (15, 1.5, "呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布"),
    (21, 3, "沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛"),
    (22, 1.5, "长春 吉林 四平 辽源 通化 白山 松原 白城"),
    (23, 2, "哈尔滨 齐齐哈尔 鸡西 鹤岗 双鸭山 大庆 伊春 佳木斯 七台河 牡丹江 黑河 绥化"),
    (31, 4, "上海"), (32, 10, "南京 无锡 徐州 常州 苏州 南通 连云港 淮安 盐城 扬州 镇江 泰州 宿迁"),
    (33, 10, "杭州 宁波 温州 嘉兴 湖州 绍兴 金华 衢州 舟山 台州 丽水"),
    (34, 4, "合肥 芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 宣城"),
    (35, 4, "福州 厦门 莆田 三明 泉州 漳州 南平 龙岩 宁德"),
    (36, 3, "南昌 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶"),
    (37, 8, "济南 青岛 淄博 枣庄 东营 烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽"),
    (41, 5, "郑州 开封 洛阳 平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡 南阳 商丘 信阳 周口 驻马店"),
    (42, 4, "武汉 黄石 十堰 宜昌 襄阳 鄂州 荆门 孝感 荆州 黄冈 咸宁 随州"),
    (43, 4, "长沙 株洲 湘潭 衡阳 邵阳 岳阳 常德 张家界 益阳 郴州 永州 怀化 娄底"),
    (44, 12, "广州 韶关 深圳 珠海 汕头 佛山 江门 湛江 茂名 肇庆 惠州 梅州 汕尾 河源 阳江 清远 东莞 中山 潮州 揭阳"),
    (45, 3, "南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左"),
    (46, 1, "海口 三亚 三沙 儋州"), (50, 3, "重庆"),
    (51, 5, "成都 自贡 攀枝花 泸州 德阳 绵阳 广元 遂宁 内江 乐山 南充 眉山 宜宾 广安 达州"),
    (52, 2, "贵阳 六盘水 遵义 安顺 毕节 铜仁"), (53, 2.5, "昆明 曲靖 玉溪 保山 昭通 丽江 普洱 临沧"),
    (54, 0.3, "拉萨 日喀则 昌都 林芝 山南 那曲"), (61, 3, "西安 铜川 宝鸡 咸阳 渭南 延安 汉中 榆林 安康 商洛"),
    (62, 1.5, "兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南"), (63, 0.5, "西宁 海东"),
    (64, 0.6, "银川 石嘴山 吴忠 固原 中卫"), (65, 1.5, "乌鲁木齐 克拉玛依 吐鲁番 哈密"),
)

# GB/T 4754-2017 divisions a company may be in: code, the word its name uses, weight (manufacturing ≈ 27%).
DIVISIONS = (
    ("A01", "农业", 1), ("A02", "林业", .3), ("A03", "畜牧", .5), ("A04", "渔业", .3), ("A05", "农业服务", .3),
    ("B06", "煤业", .2), ("B10", "矿业", .2),
    ("C13", "农副食品", 1), ("C14", "食品", 1), ("C15", "酒业", .5), ("C17", "纺织", 1.2), ("C18", "服饰", 1.2),
    ("C19", "皮革", .4), ("C20", "木业", .4), ("C21", "家具", .8), ("C22", "纸业", .3), ("C23", "印务", .5),
    ("C24", "文体用品", .5), ("C25", "石化", .1), ("C26", "化工", .8), ("C27", "医药", .5), ("C28", "化纤", .2),
    ("C29", "塑胶", 1), ("C30", "建材", 1), ("C31", "钢铁", .2), ("C32", "有色金属", .2), ("C33", "金属制品", 1.5),
    ("C34", "机械", 1.5), ("C35", "专用设备", 1), ("C36", "汽车配件", .6), ("C37", "船舶", .1), ("C38", "电气", 1.2),
    ("C39", "电子", 1.5), ("C40", "仪器仪表", .4), ("C41", "工艺品", .3), ("C42", "再生资源", .2), ("C43", "设备维修", .2),
    ("D44", "电力", .3), ("D45", "燃气", .1), ("D46", "水务", .1),
    ("E47", "建设", 1.5), ("E48", "工程", 1.5), ("E49", "安装工程", .8), ("E50", "装饰", 1.5),
    ("F51", "贸易", 12), ("F52", "商贸", 6), ("G54", "运输", 2), ("G58", "物流", 1.5), ("G59", "仓储", .6),
    ("H61", "酒店管理", .8), ("H62", "餐饮", 2), ("I63", "通信", .3), ("I64", "网络科技", 1), ("I65", "信息技术", 3),
    ("J66", "金融服务", .2), ("J67", "投资", .3), ("J68", "保险代理", .2), ("K70", "置业", 2),
    ("L71", "租赁", 1), ("L72", "企业管理咨询", 5), ("M73", "科技研发", .5), ("M74", "工程设计", 1), ("M75", "科技", 3),
    ("N77", "环保科技", .5), ("O80", "家政服务", 1), ("O81", "汽车维修", .8), ("P83", "教育咨询", .8),
    ("Q84", "医疗", .5), ("R86", "文化传媒", .5), ("R87", "影视", .3), ("R88", "文化艺术", .5), ("R89", "体育", .3),
)
# Individual businesses keep to trades a person runs: division, weight, shop words.
SHOPS = (
    ("F52", 40, "便利店 超市 百货店 五金店 服装店 水果店 烟酒店 副食店"), ("H62", 20, "餐馆 小吃店 面馆 饭店 奶茶店"),
    ("O80", 10, "理发店 美容店 洗衣店 家政服务部"), ("O81", 6, "汽车修理部 家电维修部 手机维修店"),
    ("F51", 8, "商行 经营部"), ("G54", 6, "货运部"), ("H61", 3, "旅馆 宾馆"), ("A01", 4, "种植场 家庭农场"),
    ("E50", 3, "装饰部"), ("C14", 2, "糕点坊"),
)
BRAND_CHARS = "华兴恒达盛鑫宏瑞祥泰隆昌丰安信诚德利源通博创金永新嘉鼎汇弘远天宇明光中正和益顺凯"
SURNAMES = ("王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 高 罗 郑 梁 谢 宋 唐 韩 冯 邓 曹 彭 曾 肖 田 董 潘 袁 蔡 蒋 余 "
            "于 杜 叶 程 魏 苏 吕 丁 任 沈 姚").split()
SURNAMES_PY = ("wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin gao luo zheng liang xie song "
               "tang han feng deng cao peng zeng xiao tian dong pan yuan cai jiang yu yu du ye cheng wei su lv ding ren "
               "shen yao").split()
GIVEN = "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 建 国 文 志 海 红 玉 兰 春 晓 波 鹏 辉 宇 婷 欣".split()
GIVEN_PY = ("wei fang na min jing li qiang lei jun yang yong yan jie juan tao ming chao xiu xia ping gang gui ying hua "
            "jian guo wen zhi hai hong yu lan chun xiao bo peng hui yu ting xin").split()

# Size bands, by SIZES index and then one for individual businesses: (low, high) of headcount, total assets and
# annual revenue. They overlap so that the 小微企业 thresholds (300 people, 50 million assets, 1.2 million a year
# of sales, 3 million taxable income) each cut the population into two sizeable groups.
BANDS = np.array([
    [(1000, 20000), (4e7, 5e9), (4e8, 2e10)],
    [(150, 1000), (1e7, 4e8), (3e7, 5e8)],
    [(20, 500), (1e6, 1.2e8), (1e6, 3e7)],
    [(1, 20), (1e4, 3e6), (5e4, 3e6)],
    [(1, 8), (5e3, 5e5), (2e4, 1.5e6)],
])
CHANNEL_P = np.array([.40, .30, .10, .08, .06, .03, .03])  # in CHANNELS order: inapp and sms carry most
REGISTERED_FROM, REGISTERED_TO = np.datetime64("1995-01-01"), np.datetime64("2022-03-31")
# The returns of 2022-01..06 as (return type, period, who files it): 一般纳税人 file VAT monthly, 小规模 quarterly,
# and every enterprise but an individual business files enterprise income tax quarterly.
MONTHS = [f"2022-{m:02d}" for m in range(1, 7)]
SLOTS = ([("增值税", m, "general") for m in MONTHS] + [("增值税", q, "small") for q in ("2022Q1", "2022Q2")]
         + [("企业所得税", q, "enterprise") for q in ("2022Q1", "2022Q2")])
# The first day after each slot's period: returns are due from then, and no taxpayer registered since files one.
SLOT_END = np.array([f"2022-{m:02d}" for m in range(2, 8)] + ["2022-04", "2022-07"] * 2, dtype="datetime64[D]")
LATEST = np.array([p in ("2022-06", "2022Q2") for _, p, _ in SLOTS])

_ALPHA = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), np.uint8)
_ALPHA_INDEX = np.zeros(256, np.int64)
_ALPHA_INDEX[_ALPHA] = np.arange(len(_ALPHA))
# GB 11714 values a character by its place in 0-9A-Z, not in the credit-code alphabet.
_VALUE_11714 = np.array([int(c, 36) for c in CREDIT_CODE_ALPHABET])


def _arrow_type(kind: str) -> pa.DataType:
    return {"number": pa.decimal128(18, 2), "int": pa.int32(), "bool": pa.bool_(), "date": pa.date32()}.get(kind, pa.string())


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([(f.name, _arrow_type(f.kind)) for f in table.fields])


def _ascii(mat: np.ndarray) -> pa.Array:
    """Fixed-width ASCII rows (an n×w uint8 matrix) as a string array, without a Python string per row."""
    n, w = mat.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(mat, np.uint8)))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an n×width ASCII matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values.astype(np.int64)[:, None] // powers % 10 + 48).astype(np.uint8)


def _pick(words, idx: np.ndarray) -> pa.Array:
    return pa.array(list(words), pa.string()).take(idx)


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _money(x: np.ndarray) -> pa.Array:
    """Yuan as DECIMAL(18,2), built from exact cents so that no float-to-decimal rounding can creep in."""
    cents = np.round(x * 100).astype(np.int64)
    buf = np.empty((len(cents), 2), np.int64)
    buf[:, 0], buf[:, 1] = cents, cents >> 63  # 128-bit two's complement, little-endian
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(buf)])


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), pa.date32())


def _choice(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    p = np.asarray(weights, float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _log_band(t: np.ndarray, band: np.ndarray) -> np.ndarray:
    lo, hi = band[..., 0], band[..., 1]
    return lo * (hi / lo) ** t


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash of each value."""
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _scramble(position: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """A keyed bijection of [0, 31^8): a Feistel network on two base-31^4 halves.

    Being a bijection, distinct taxpayers get distinct organisation codes with no set of codes to check
    against; being a keyed hash, neighbouring taxpayers' codes look unrelated.
    """
    half = np.uint64(31 ** 4)
    left, right = position.astype(np.uint64) // half, position.astype(np.uint64) % half
    for key in keys:
        left, right = right, (left + _mix(right ^ key) % half) % half
    return (left * half + right).astype(np.int64)


def _fnv(mat: np.ndarray, salt: bytes) -> np.ndarray:
    """FNV-1a over each row's bytes after `salt`: a stable hash (unlike DuckDB's hash(), which may change)."""
    h = np.full(len(mat), 0xCBF29CE484222325, np.uint64)
    prime = np.uint64(0x100000001B3)
    for b in salt:
        h = (h ^ np.uint64(b)) * prime
    for col in mat.T:
        h = (h ^ col.astype(np.uint64)) * prime
    return h


class _Writer:
    """One output file, appended to chunk by chunk."""

    def __init__(self, path: Path, table: Table, fmt: str):
        self.schema = arrow_schema(table)
        if fmt == "parquet":
            self.out = pq.ParquetWriter(path, self.schema, compression="zstd")
        else:
            # The header is written by hand so that it is the bare column names; pyarrow would quote each.
            self.file = open(path, "wb")  # closed in close(), after the CSV writer
            self.file.write((",".join(table.names) + "\n").encode())
            self.out = pacsv.CSVWriter(self.file, self.schema, write_options=pacsv.WriteOptions(
                include_header=False, quoting_style="needed"))
        self.rows = 0

    def write(self, columns: list[pa.Array]) -> None:
        batch = pa.Table.from_arrays(columns, schema=self.schema)
        self.out.write_table(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        self.out.close()
        if hasattr(self, "file"):
            self.file.close()


def generate(out_dir: Path, *, taxpayers: int, seed: int = 2022, fmt: str = "parquet",
             claim_rules: dict[str, tuple[str, ...]] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Write registry, contacts, claims and filings as `out_dir/<table>.<fmt>`; return the rows written per table.

    `claim_rules` maps a policy id to (a DuckDB WHERE over registry columns, the period claimed[, the amount as a
    DuckDB expression over them]): about 70% of the taxpayers it selects get a claim, of that amount (claims of
    less than a cent are left out), or of a share of revenue when no amount is given. `progress(table, taxpayers done, taxpayers)` is called per chunk.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    if not 0 <= taxpayers <= MAX_TAXPAYERS:
        raise ValueError(f"taxpayers must be between 0 and {MAX_TAXPAYERS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = (REGISTRY, CONTACTS, CLAIMS, FILINGS)
    writers = {t.name: _Writer(out_dir / f"{t.name}.{fmt}", t, fmt) for t in tables}
    keys = np.random.default_rng([seed, 0xC0DE]).integers(0, 2 ** 63, 4, dtype=np.uint64)
    con = duckdb.connect()
    try:
        for chunk_no, start in enumerate(range(0, taxpayers, CHUNK)):
            n = min(CHUNK, taxpayers - start)
            # A stream per (seed, chunk): seed+chunk would make seed 1's chunk 1 equal seed 2's chunk 0.
            rng = np.random.default_rng([seed, chunk_no])
            reg = _registry(rng, _scramble(np.arange(start, start + n, dtype=np.int64), keys))
            writers["registry"].write(reg["columns"])
            writers["contacts"].write(_contacts(rng, reg))
            writers["filings"].write(_filings(rng, reg))
            if claim_rules:
                writers["claims"].write(_claims(con, reg, claim_rules))
            if progress:
                for t in tables:
                    progress(t.name, start + n, taxpayers)
    finally:
        con.close()
        for w in writers.values():
            w.close()
    return {name: w.rows for name, w in writers.items()}


def _registry(rng: np.random.Generator, org: np.ndarray) -> dict:
    n = len(org)
    ib = rng.random(n) < 0.25
    size = np.where(ib, 3, _choice(rng, [5, 15, 40, 40], n))
    band = np.where(ib, 4, size)

    # Region: a weighted city, then a county 01-20 (01-16 in a municipality).
    cities = [(code, w, c, i + 1) for code, w, names in PROVINCES for i, c in enumerate(names.split())]
    city = _choice(rng, [w / len(names.split()) for code, w, names in PROVINCES for _ in names.split()], n)
    prov = np.array([c[0] for c in cities])[city]
    county = rng.integers(1, 21, n)
    county = np.where(np.isin(prov, (11, 12, 31, 50)), (county - 1) % 16 + 1, county)
    region = _digits(prov * 10000 + np.array([c[3] for c in cities])[city] * 100 + county, 6)

    # Industry: a division by weight (individual businesses from their own trades), then class digits.
    div_e = _choice(rng, [d[2] for d in DIVISIONS], n)
    shop = _choice(rng, [s[1] for s in SHOPS], n)
    divisions = [d[0] for d in DIVISIONS] + [s[0] for s in SHOPS]
    div = np.where(ib, len(DIVISIONS) + shop, div_e)
    div_code = np.frombuffer("".join(divisions).encode(), np.uint8).reshape(-1, 3)[div]
    industry = np.concatenate([div_code, _digits(rng.integers(1, 6, n) * 10 + rng.integers(0, 10, n), 2)], axis=1)
    section = div_code[:, 0]
    manufacturing = section == ord("C")
    tech_field = manufacturing | np.isin(section, (ord("I"), ord("M")))

    # A latent scale shared by the three measures, mixed with a little of each's own: big headcounts go with big
    # assets and revenue, without the pile-up at band edges that clipping a jittered scale would make.
    t = 0.75 * rng.random(n)[:, None] + 0.25 * rng.random((n, 3))
    headcount = np.maximum(1, np.round(_log_band(t[:, 0], BANDS[band, 0]))).astype(np.int32)
    assets = _log_band(t[:, 1], BANDS[band, 1])
    revenue = _log_band(t[:, 2], BANDS[band, 2])
    monthly = revenue / 12 * rng.uniform(0.9, 1.1, n)
    taxable = np.maximum(0, revenue * rng.normal(0.08, 0.09, n))
    general = (revenue > 5e6) | (~ib & (rng.random(n) < 0.06))  # 5 million a year obliges general registration

    high_tech = ~ib & (rng.random(n) < np.where(tech_field, 0.10, 0.005))
    tech_sme = ~ib & (size != 0) & (rng.random(n) < np.where(tech_field, 0.13, 0.035))
    exporter = ~ib & (rng.random(n) < np.where(manufacturing, 0.25, 0.06))
    rd_p = np.where(high_tech | tech_sme, 0.95, np.where(manufacturing, 0.25, 0.08)) * ~ib
    rd = (rng.random(n) < rd_p) * revenue * rng.uniform(0.01, 0.06, n) * np.where(high_tech, 1.6, 1)
    vat_credit = (general & (rng.random(n) < 0.6)) * revenue * rng.uniform(0.002, 0.04, n)
    credit = _choice(rng, [12, 45, 33, 6, 4], n)
    span = (REGISTERED_TO - REGISTERED_FROM).astype(int) + 1
    registered = REGISTERED_FROM + (span * rng.random(n) ** 0.7).astype(np.int64)  # skewed to recent years

    # Credit code: 9, 1 (company) or 2 (individual business), region, organisation code, check character.
    org_idx = org[:, None] // 31 ** np.arange(7, -1, -1, dtype=np.int64) % 31
    c11714 = 11 - (_VALUE_11714[org_idx] @ np.array([3, 7, 9, 10, 5, 8, 4, 2])) % 11
    check11714 = np.where(c11714 == 10, ord("X"), np.where(c11714 == 11, ord("0"), c11714 + 48))
    code = np.empty((n, 18), np.uint8)
    code[:, 0], code[:, 1] = ord("9"), np.where(ib, ord("2"), ord("1"))
    code[:, 2:8], code[:, 8:16], code[:, 16] = region, _ALPHA[org_idx], check11714
    total = _ALPHA_INDEX[code[:, :17]] @ np.array(CREDIT_CODE_WEIGHTS)
    code[:, 17] = _ALPHA[(31 - total % 31) % 31]
    credit_code = _ascii(code)

    # Names: companies are city + two-character brand + trade + form; individual businesses are 某记 shops.
    owner = _choice(rng, 1 / (np.arange(len(SURNAMES)) + 5), n)
    city_names = _pick([c[2] for c in cities], city)
    b1 = rng.integers(0, len(BRAND_CHARS), n)
    b2 = (b1 + rng.integers(1, len(BRAND_CHARS), n)) % len(BRAND_CHARS)
    form = np.where(size == 0, rng.integers(0, 2, n), 2 + (rng.random(n) < 0.15))
    company = _join(city_names, _pick(BRAND_CHARS, b1), _pick(BRAND_CHARS, b2), _pick([d[1] for d in DIVISIONS], div_e),
                    _pick(("股份有限公司", "有限公司", "有限公司", "有限责任公司"), form))
    shop_words = [(i, w) for i, s in enumerate(SHOPS) for w in s[2].split()]
    shop_first = np.searchsorted([i for i, _ in shop_words], np.arange(len(SHOPS)))
    shop_count = np.bincount([i for i, _ in shop_words])
    word = shop_first[shop] + (rng.random(n) * shop_count[shop]).astype(np.int64)
    person_shop = _join(city_names, pa.scalar("市"), _pick(SURNAMES, owner), pa.scalar("记"),
                        _pick([w for _, w in shop_words], word))
    name = pc.if_else(pa.array(ib), person_shop, company)

    columns = [credit_code, name, _ascii(region), _ascii(industry), _pick(VAT_TYPES, np.where(general, 0, 1)),
               _pick(SIZES, size), pa.array(headcount), _money(assets), _money(revenue), _money(monthly), _money(taxable),
               _money(rd), _money(vat_credit), _pick(CREDIT_RATINGS, credit), pa.array(high_tech), pa.array(tech_sme),
               pa.array(exporter), pa.array(manufacturing), pa.array(ib), _dates(registered)]
    return {"columns": columns, "code": code, "ib": ib, "general": general, "owner": owner, "revenue": revenue,
            "registered": registered}


def _contacts(rng: np.random.Generator, reg: dict) -> list[pa.Array]:
    ib = reg["ib"]
    n = len(ib)
    # Which roles a taxpayer names; an individual business has its owner and sometimes a tax clerk.
    has = np.stack([np.ones(n, bool), ~ib & (rng.random(n) < 0.8), rng.random(n) < np.where(ib, 0.3, 0.7)], axis=1)
    tp, role = np.nonzero(has)
    pairs = len(tp)
    surname = _choice(rng, 1 / (np.arange(len(SURNAMES)) + 5), pairs)
    surname = np.where(ib[tp] & (role == 0), reg["owner"][tp], surname)  # the shop carries its owner's surname
    g1, g2 = rng.integers(0, len(GIVEN), pairs), rng.integers(0, len(GIVEN), pairs)
    two = rng.random(pairs) < 0.7
    # One or two distinct channels per person: (taxpayer, role, channel) is the table's key.
    c1 = _choice(rng, CHANNEL_P, pairs)
    c2 = (c1 + 1 + _choice(rng, np.ones(len(CHANNELS) - 1), pairs)) % len(CHANNELS)
    count = 1 + (rng.random(pairs) < 0.4)
    pair = np.repeat(np.arange(pairs), count)
    first = np.r_[True, pair[1:] != pair[:-1]]
    channel = np.where(first, c1[pair], c2[pair])
    rows = len(pair)

    given = pc.if_else(pa.array(two), _join(_pick(GIVEN, g1), _pick(GIVEN, g2)), _pick(GIVEN, g1))
    given_py = pc.if_else(pa.array(two), _join(_pick(GIVEN_PY, g1), _pick(GIVEN_PY, g2)), _pick(GIVEN_PY, g1))
    person = _join(_pick(SURNAMES, surname), given).take(pair)
    handle = _join(given_py, _pick(SURNAMES_PY, surname)).take(pair)
    code = reg["code"][tp[pair]]
    credit_code = _ascii(code)
    roles = _pick(CONTACT_ROLES, role[pair])

    # Each channel's address is built for its own rows only, then the pieces are put back in row order.
    order = np.argsort(channel, kind="stable")
    pieces = []
    for ch, name in enumerate(CHANNELS):
        rows_ch = order[np.searchsorted(channel[order], ch):np.searchsorted(channel[order], ch, side="right")]
        k = len(rows_ch)
        if name == "sms":
            piece = _ascii(np.concatenate([np.full((k, 1), ord("1"), np.uint8), _digits(rng.integers(3, 10, k), 1),
                                           _digits(rng.integers(0, 10 ** 9, k), 9)], axis=1))
        elif name == "inapp":
            piece = _join(credit_code.take(rows_ch), pa.scalar("/"), roles.take(rows_ch))
        elif name == "email":
            piece = _join(handle.take(rows_ch), pc.cast(pa.array(rng.integers(1, 1000, k)), pa.string()),
                          pa.scalar("@example.com"))
        elif name == "webhook":
            piece = _join(pa.scalar("https://hooks.example.com/"), credit_code.take(rows_ch))
        else:
            piece = _join(handle.take(rows_ch), pc.cast(pa.array(rng.integers(1000, 10000, k)), pa.string()))
        pieces.append(piece)
    address = pa.concat_arrays(pieces).take(np.argsort(order))
    opted_out = rng.random(rows) < 0.03
    return [credit_code, roles, person, _pick(CHANNELS, channel), address, pa.array(opted_out)]


def _filings(rng: np.random.Generator, reg: dict) -> list[pa.Array]:
    ib, general = reg["ib"], reg["general"]
    n = len(ib)
    who = {"general": general, "small": ~general, "enterprise": ~ib}
    offered = np.stack([who[kind] for _, _, kind in SLOTS], axis=1)
    # No return for a period that ended before registration; about 5% have not filed the latest period yet.
    offered &= reg["registered"][:, None] < SLOT_END[None, :]
    offered &= ~(LATEST[None, :] & (rng.random(n) < 0.05)[:, None])
    tp, slot = np.nonzero(offered)
    filed_on = SLOT_END[slot] + rng.integers(0, 20, len(slot))
    return [_ascii(reg["code"][tp]), _pick([s[0] for s in SLOTS], slot), _pick([s[1] for s in SLOTS], slot),
            _dates(filed_on)]


def _claims(con: duckdb.DuckDBPyConnection, reg: dict, claim_rules: dict[str, tuple[str, ...]]) -> list[pa.Array]:
    n = len(reg["ib"])
    # The rule's WHERE runs on exactly the registry's columns, plus a row number that no rule can name, so the
    # matches come back as positions whatever order a parallel scan returns them in.
    names = [*REGISTRY.names, "_synthetic_row"]
    con.register("registry_extract", pa.Table.from_arrays([*reg["columns"], pa.array(np.arange(n))], names=names))
    # A synthetic extract has no credit register: a rule's credit_level is the extract's level (store._overlay).
    con.execute("CREATE OR REPLACE TEMP VIEW registry AS SELECT *, credit AS credit_level, "
                "CAST(0 AS INTEGER) AS credit_year, '无' AS credit_repair FROM registry_extract")
    parts = []
    for policy, rule in claim_rules.items():
        where_sql, period, amount_sql = (*rule, None)[:3]
        try:
            found = con.sql(f"SELECT _synthetic_row, CAST({amount_sql or 0} AS DOUBLE) AS amount FROM registry "
                            f"WHERE {where_sql}").fetchnumpy()
        except duckdb.Error as exc:
            raise ValueError(f"policy {policy}: the WHERE clause or the amount does not run: {exc}") from exc
        rows = np.asarray(found["_synthetic_row"], np.int64)
        match = np.zeros(n, bool)
        match[rows] = True
        h = _fnv(reg["code"], hashlib.sha256(policy.encode()).digest()[:8])
        idx = np.nonzero(match & (h % np.uint64(1000) < 700))[0]
        if amount_sql:
            # The policy's own rate on the taxpayer's figures, no noise: a cap the policy sets (300万 of taxable
            # income, say) holds. A claim that saves less than a cent is no claim: nothing was reduced.
            value = np.zeros(n)
            value[rows] = np.nan_to_num(np.asarray(found["amount"], np.float64))
            amount = value[idx]
            keep = amount >= 0.005
            idx, amount = idx[keep], amount[keep]
        else:  # a rule without a formula (tests, policies added later): a share of revenue, as before
            frac = (h[idx] >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
            amount = np.clip(reg["revenue"][idx] * (0.001 + 0.01 * frac), 10, 5e7)
        k = len(idx)
        parts.append([_ascii(reg["code"][idx]), pa.repeat(pa.scalar(policy), k), pa.repeat(pa.scalar(period), k),
                      _money(amount)])
    con.execute("DROP VIEW registry")
    con.unregister("registry_extract")
    return [pa.concat_arrays([p[i] for p in parts]) for i in range(4)]
