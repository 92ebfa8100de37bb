"""The notice parser on the seed as scraped, on clean and HTML renderings, on other encodings, and on broken input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunfeng.plan.errors import NoticeError
from chunfeng.plan.parser import chinese_number, parse_notice, restore_lost
from chunfeng.plan.text import squeeze

DATA = Path(__file__).parent / "data"

# New measure (section 一) → its row in the attachment table, read off the notice by hand.
NEW_TO_ROW = {1: 1, 2: 3, 3: 4, 4: 17, 5: 98, 6: 12, 7: 13, 8: 14, 9: 18, 10: 19,
              11: 82, 12: 89, 13: 115, 14: 91, 15: 92, 16: 96}
CATEGORIES = [("诉求响应更及时", 4, 29), ("智慧办理更便捷", 5, 27), ("分类服务更精细", 4, 25),
              ("执法监管更公正", 3, 20), ("税收共治更聚力", 4, 20)]


@pytest.fixture(scope="module")
def seed(seed_bytes):
    return parse_notice(seed_bytes)


def structure(notice) -> dict:
    """Everything but punctuation, which the scrape lost and a clean rendering keeps.

    The section-一 texts are compared apart: the scrape also lost a character there (办税()人员).
    """
    data = notice.to_dict()
    for c in data["categories"]:
        for i in c["items"]:
            for m in i["measures"]:
                m["text"] = squeeze(m["text"])
    for n in data["new_measures"]:
        n["title"] = squeeze(n["title"])
        n["text"] = len(squeeze(n["text"]))
    return data


def same_plan(a, b) -> None:
    sa, sb = structure(a), structure(b)
    for x, y in zip(sa["new_measures"], sb["new_measures"], strict=True):
        assert abs(x.pop("text") - y.pop("text")) <= 1, (x, y)
    assert sa == sb


def test_seed_as_scraped(seed):
    assert seed.doc_number == "税总纳服函〔2022〕32号"
    assert seed.issued.isoformat() == "2022-03-31"
    assert seed.title == "国家税务总局关于推出2022年“我为纳税人缴费人办实事暨便民办税春风行动2.0版”的通知"
    assert [(c.name, c.stated_items, c.stated_measures) for c in seed.categories] == CATEGORIES
    assert [(c.name, len(c.items), sum(len(i.measures) for i in c.items)) for c in seed.categories] == CATEGORIES
    items = [i for c in seed.categories for i in c.items]
    assert [i.no for i in items] == list(range(1, 21))
    assert items[0].name == "需求快速响应" and items[-1].name == "拓展信用应用"
    assert [m.no for _, _, m in seed.measures()] == list(range(1, 122))
    assert len(seed.new_measures) == 16


def test_measure_texts_are_whole_cells(seed):
    texts = {m.no: m.text for _, _, m in seed.measures()}
    assert texts[1].startswith("通过积极开展“一把手走流程”工作")
    assert texts[54] == "进一步精简出口退税涉税资料报送、简化退税办理流程,将全国正常出口退税平均办理时间由7个工作日压缩至6个工作日以内。"
    # The last row ends where the table ends, not in the page's login footer.
    assert texts[121].endswith("为守信纳税人推出更多激励措施。")
    assert not any("登录" in t or "密码" in t for t in texts.values())


def test_every_new_measure_maps_to_its_table_row(seed):
    assert {n.no: n.table_no for n in seed.new_measures} == NEW_TO_ROW
    assert [n.group for n in seed.new_measures] == [1] * 5 + [2] * 5 + [3] * 6
    rows = {m.no: squeeze(m.text) for _, _, m in seed.measures()}
    for n in seed.new_measures:
        # The section-一 wording and the table row say the same thing, apart from lost characters.
        assert n.title and n.text
        common = sum(1 for ch in squeeze(n.text) if ch in rows[n.table_no])
        assert common / len(squeeze(n.text)) > 0.95, n


def test_new_measure_title_and_text(seed):
    first = seed.new_measures[0]
    assert first.title == "开展“一把手走流程”工作"
    assert first.text.startswith("通过积极开展“一把手走流程”工作")
    assert seed.new_measures[10].title == "落实《市场主体登记管理条例》"


def test_clean_rendering_gives_the_same_plan(seed):
    clean = parse_notice((DATA / "notice_clean.txt").read_bytes())
    same_plan(clean, seed)
    assert clean.new_measures[3].text.startswith("区分企业法定代表人、财务负责人、办税（费）人员")


def test_html_rendering_gives_the_same_plan(seed):
    html = parse_notice((DATA / "notice.html").read_bytes())
    same_plan(html, seed)
    assert html.to_dict() == parse_notice((DATA / "notice_clean.txt").read_bytes()).to_dict()


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-16"])
def test_other_encodings(seed_bytes, seed, encoding):
    data = seed_bytes.decode("utf-8").encode(encoding)
    assert parse_notice(data).to_dict() == seed.to_dict()


def test_crlf_and_cr(seed_bytes, seed):
    text = seed_bytes.decode("utf-8")
    assert parse_notice(text.replace("\n", "\r\n").encode()).to_dict() == seed.to_dict()
    assert parse_notice(text.replace("\n", "\r").encode()).to_dict() == seed.to_dict()


def test_html_in_gb18030(seed):
    html = (DATA / "notice.html").read_text(encoding="utf-8").replace('charset="utf-8"', 'charset="gb18030"')
    same_plan(parse_notice(html.encode("gb18030")), seed)


CHROME = st.lists(
    st.text(alphabet=st.sampled_from("首页登录注册版权所有联系我们网站地图税务总局新闻 |>:-ABCxyz"), min_size=1, max_size=30),
    max_size=6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=CHROME, after=CHROME)
def test_page_chrome_around_the_notice_changes_nothing(seed_bytes, seed, before, after):
    text = "\n".join(before) + "\n" + seed_bytes.decode("utf-8") + "\n" + "\n".join(after)
    assert parse_notice(text.encode()).to_dict() == seed.to_dict()


@given(st.integers(min_value=1, max_value=99))
def test_chinese_numbers(n):
    digits = "一二三四五六七八九"
    tens, ones = divmod(n, 10)
    word = (("" if tens == 1 else digits[tens - 1]) + "十" if tens else "") + (digits[ones - 1] if ones else "")
    assert chinese_number(word) == n


# --- broken input: each refused with a message that names what is wrong ---------------------------


def test_count_that_does_not_match(seed_bytes):
    broken = seed_bytes.decode().replace("关注个性需求429条", "关注个性需求430条").encode()
    with pytest.raises(NoticeError) as err:
        parse_notice(broken)
    assert "诉求响应更及时" in str(err.value) and "30" in str(err.value) and "29" in str(err.value)


def test_item_count_that_does_not_match(seed_bytes):
    broken = seed_bytes.decode().replace("保障合法权益320条", "保障合法权益420条").encode()
    with pytest.raises(NoticeError, match="执法监管更公正.*4 项.*3 项"):
        parse_notice(broken)


def test_missing_category_in_section_two(seed_bytes):
    lines = [line for line in seed_bytes.decode().split("\n") if "执法监管更公正。包括" not in line]
    with pytest.raises(NoticeError, match="执法监管更公正"):
        parse_notice("\n".join(lines).encode())


def test_missing_category_in_table(seed_bytes):
    broken = seed_bytes.decode().replace("四、执法监管更公正\n", "").encode()
    with pytest.raises(NoticeError, match="执法监管更公正"):
        parse_notice(broken)


def test_characters_the_scrape_lost_are_restored_from_the_other_statement(seed):
    texts = {m.no: m.text for _, _, m in seed.measures()}
    # The table lost its quotes; section 一 states the same sentences with them.
    assert texts[1] == "通过积极开展“一把手走流程”工作,找准办税缴费过程中的痛点难点堵点,及时加以解决。"
    assert "上线“组合式税费支持政策”专题" in texts[13]
    # Section 一 lost the bracket's content; the table has it.
    assert seed.new_measures[3].text.startswith("区分企业法定代表人、财务负责人、办税(费)人员等不同类型")
    assert texts[17] == seed.new_measures[3].text
    # Rows whose full stop was lost end as sentences again; no row is left without one.
    assert texts[5].endswith("基本实现全国咨询一线通答。") and texts[8].endswith("实现办问协同。")
    assert texts[69] == "推广社保退费申请网上受理,让缴费人少跑路。"
    assert all(t.endswith("。") for t in texts.values())


def test_restoring_takes_only_what_a_scrape_drops():
    assert restore_lost("开展一把手走流程工作", "开展“一把手走流程”工作") == "开展“一把手走流程”工作"
    assert restore_lost("办税()人员等", "办税(费)人员等") == "办税(费)人员等"
    # Words that differ are not taken from the other text: only quotes, full stops and an empty bracket's content.
    assert restore_lost("开展甲工作", "开展乙丙工作") == "开展甲工作"
    assert restore_lost("办税人员", "办税缴费人员") == "办税人员"


def test_a_missing_row_is_named(seed_bytes):
    text = seed_bytes.decode()
    start, end = text.index("\n58\n"), text.index("\n59\n")
    with pytest.raises(NoticeError, match="缺少第 58 行.*第 57 行之后是第 59 行"):
        parse_notice((text[:start] + text[end:]).encode())


def test_missing_measure_row(seed_bytes):
    text = seed_bytes.decode()
    start = text.index("\n54\n")
    end = text.index("\n55\n")
    broken = (text[:start] + text[end:]).encode()
    with pytest.raises(NoticeError):
        parse_notice(broken)


def test_new_measure_without_table_row(seed_bytes):
    broken = seed_bytes.decode().replace("开展虚假代开发票专项治理,依法打击不法分子利用自然人、小规模纳税人身份虚假代开发票行为。\n\n92",
                                         "开展其他工作。\n\n92").encode()
    with pytest.raises(NoticeError, match="新增措施第 14 条"):
        parse_notice(broken)


def test_new_measure_group_count(seed_bytes):
    broken = seed_bytes.decode().replace("新推出6条措施", "新推出7条措施").encode()
    with pytest.raises(NoticeError, match="第 3 段.*7.*6"):
        parse_notice(broken)


@pytest.mark.parametrize("data", [b"", b"   \n\r\n  ", "\ufeff".encode()])
def test_empty_file(data):
    with pytest.raises(NoticeError, match="为空|没有文字"):
        parse_notice(data)


def test_binary_file():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    with pytest.raises(NoticeError, match="不是文本文件"):
        parse_notice(png)


def test_undecodable_file():
    with pytest.raises(NoticeError, match="编码"):
        parse_notice(bytes([0x81, 0x30, 0xFF, 0xFE, 0x80]) * 50)


def test_text_that_is_not_a_notice():
    with pytest.raises(NoticeError, match="工作任务安排表"):
        parse_notice("国家税务总局关于某事的通知\n这是一段普通的文字。".encode())
