"""The region a question names: "在北京买了套房" asks about Beijing even when the asker chose no region.

Regional entries answer only their region, so a question that names its place but arrives with the
national default would never reach them. Province names (full and short) and the cities people name
instead of their province map to the bureau's region code; the five cities under separate state
planning keep their own bureau. A region chosen by the asker always wins over one read from the text.
"""

from __future__ import annotations

import re
from functools import cache

from chunfeng.org.builtin import PROVINCES

# Short names people use, and cities named instead of their province (capitals and the largest cities).
_OTHER_NAMES = {
    "110000": "北京", "120000": "天津", "130000": "河北 石家庄 唐山 保定 邯郸 廊坊 沧州",
    "140000": "山西 太原 大同 运城", "150000": "内蒙古 内蒙 呼和浩特 包头 鄂尔多斯",
    "210000": "辽宁 沈阳 鞍山 锦州", "220000": "吉林 长春", "230000": "黑龙江 哈尔滨 大庆 齐齐哈尔",
    "310000": "上海", "320000": "江苏 南京 苏州 无锡 常州 南通 徐州 扬州 昆山",
    "330000": "浙江 杭州 温州 绍兴 嘉兴 金华 义乌 台州 湖州", "340000": "安徽 合肥 芜湖 蚌埠",
    "350000": "福建 福州 泉州 漳州 莆田", "360000": "江西 南昌 赣州 九江", "370000": "山东 济南 烟台 潍坊 临沂 淄博 济宁",
    "410000": "河南 郑州 洛阳 开封 南阳", "420000": "湖北 武汉 宜昌 襄阳", "430000": "湖南 长沙 株洲 岳阳 衡阳",
    "440000": "广东 广州 东莞 佛山 珠海 中山 惠州 汕头 江门 湛江", "450000": "广西 南宁 柳州 桂林",
    "460000": "海南 海口 三亚", "500000": "重庆", "510000": "四川 成都 绵阳 宜宾", "520000": "贵州 贵阳 遵义",
    "530000": "云南 昆明 大理 丽江", "540000": "西藏 拉萨", "610000": "陕西 西安 宝鸡 咸阳",
    "620000": "甘肃 兰州 天水", "630000": "青海 西宁", "640000": "宁夏 银川", "650000": "新疆 乌鲁木齐 喀什",
    "210200": "大连", "330200": "宁波", "350200": "厦门", "370200": "青岛", "440300": "深圳",
}


@cache
def _pattern() -> tuple[re.Pattern, dict[str, str]]:
    names = {name: code for code, name in PROVINCES}
    for code, others in _OTHER_NAMES.items():
        names.update({name: code for name in others.split()})
    # Longest first, so 内蒙古自治区 wins over 内蒙古 and 广州 is read before any shorter name inside it.
    return re.compile("|".join(sorted(map(re.escape, names), key=len, reverse=True))), names


def region_named(text: str) -> str | None:
    """The region of the first place the text names, or None when it names none or several regions."""
    pattern, names = _pattern()
    found = {names[m.group()] for m in pattern.finditer(text)}
    return found.pop() if len(found) == 1 else None


def is_place(word: str) -> bool:
    """Is this word a place the module knows ("郑州", "南昌市", "浙江省")? A national entry answers for every place, so a
    question's place is not a word its answer must speak of (index.Index.covered)."""
    _, names = _pattern()
    return word in names or (len(word) > 2 and word[-1] in "省市区" and word[:-1] in names)
