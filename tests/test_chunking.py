import random
import string
import time
import unicodedata

from assistant.chunking import Chunker, sentence_spans
from assistant.documents import load_paths
from assistant.types import Article

from .conftest import SEEDS


def test_sentences_respect_abbreviations_and_lines():
    text = (
        "Mr. Putin spoke to them. The U.S. replied at once! Did it really happen?\nA new line here. Please come back."
    )
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "Mr. Putin spoke to them.",
        "The U.S. replied at once!",
        "Did it really happen?",
        "A new line here. Please come back.",
    ]  # a fragment of under 4 words stays with its sentence


def test_passages_are_bounded_exact_and_overlap():
    chunker = Chunker(max_tokens=60, overlap_tokens=20)
    for art in load_paths([SEEDS]).articles:
        passages = chunker.chunk(art)
        assert passages[0].char_start == 0 and passages[-1].char_end == len(art.text)
        for p, q in zip(passages, passages[1:], strict=False):
            assert q.char_start > p.char_start  # moves on
            assert q.char_start <= p.char_end or not art.text[p.char_end : q.char_start].strip()  # no gap
        for p in passages:
            assert art.text[p.char_start : p.char_end] == p.text
            assert p.n_tokens == chunker.count(p.text) <= 60
            # Whole sentences only, unless one sentence alone is over the limit.
            sentence = next((s, e) for s, e in sentence_spans(art.text) if s <= p.char_start < e)
            assert p.char_start == sentence[0] or chunker.count(art.text[sentence[0] : sentence[1]]) > 60


def test_long_sentence_is_cut_at_words_and_model_limit_is_honoured():
    text = " ".join(f"word{i}" for i in range(400)) + "."
    art = Article("x", "t", text)
    passages = Chunker(max_tokens=50, overlap_tokens=0).chunk(art)
    assert all(p.n_tokens <= 50 for p in passages) and len(passages) > 5
    assert " ".join(p.text for p in passages) == text
    limited = Chunker(max_tokens=50, overlap_tokens=0, model_limit=lambda ts: [len(t.split()) <= 10 for t in ts])
    assert all(len(p.text.split()) <= 10 for p in limited.chunk(art))


# Text without the boundaries an English splitter knows: every passage must still be at most max_tokens.

CHINESE_NEWS = (
    "国家统计局周一公布的数据显示，今年第一季度国内生产总值同比增长百分之五点三，高于市场普遍预期。"
    "分析人士认为，消费回暖和制造业投资加快是推动经济增长的主要因素。"
    "数据显示，三月份社会消费品零售总额同比增长百分之三点一，其中餐饮收入增速明显加快。"
    "同期规模以上工业增加值增长百分之四点五，高技术制造业表现尤为突出。"
    "不过，房地产开发投资仍然下降百分之九点五，房地产市场的调整尚未结束。"
    "国家统计局新闻发言人在发布会上表示，外部环境依然复杂严峻，国内需求仍显不足。"
    "他说：“我们将继续实施积极的财政政策和稳健的货币政策，巩固经济回升向好的态势。”"
    "中国人民银行上周宣布下调存款准备金率零点五个百分点，预计释放长期资金约一万亿元。"
    "多家国际投资银行随后上调了对中国全年经济增长的预测。"
    "与此同时，人民币兑美元汇率本周小幅走强，上海和深圳股市也连续三个交易日上涨。"
    "在出口方面，海关总署的数据显示，一季度出口总额同比增长百分之一点五。"
    "电动汽车、锂电池和太阳能电池板等新产品的出口增长超过百分之六十！"
    "欧盟委员会此前宣布对中国产电动汽车展开反补贴调查，引发北京方面的强烈不满。"
    "商务部发言人表示，中方将密切关注调查进展，并采取必要措施维护中国企业的合法权益。"
    "在就业方面，全国城镇调查失业率为百分之五点二，比上月下降零点一个百分点。"
    "但十六至二十四岁青年人的失业率依然处于较高水平，引起社会广泛关注。"
    "教育部表示，今年高校毕业生预计达到一千一百七十九万人，再创历史新高。"
    "多地政府推出补贴措施，鼓励企业吸纳应届毕业生，并扩大基层公共服务岗位。"
    "专家指出，结构性就业矛盾需要通过职业培训和产业升级来逐步解决。"
    "在物价方面，三月份居民消费价格指数同比上涨百分之零点一，涨幅较上月回落。"
    "猪肉价格持续下跌，是拉低食品价格的主要原因。"
    "扣除食品和能源价格后的核心消费价格指数上涨百分之零点六，显示内需仍然偏弱。"
    "一些经济学家呼吁加大财政刺激力度，特别是增加对居民的直接补贴。"
    "财政部官员则表示，今年将发行一万亿元超长期特别国债，用于重大项目建设。"
    "地方政府专项债券的发行节奏也将加快，以支持基础设施投资。"
    "国际货币基金组织在最新报告中预测，中国今年经济增长率约为百分之四点六。"
    "报告同时提醒，人口老龄化和生产率增速放缓将对中长期增长构成挑战。"
    "北京大学一位经济学教授在接受本报记者采访时说，改革开放仍然是应对挑战的关键。"
    "他认为，应当进一步放宽市场准入，为民营企业创造更加公平的竞争环境。"
    "在消费方面，假日经济表现亮眼，清明节假期国内旅游出游人次同比增长百分之十一点五。"
    "文化和旅游部表示，入境游客数量也在快速恢复，多个城市的酒店入住率创下新高。"
    "网络零售额继续保持两位数增长，农村地区的线上消费增速快于城市。"
    "汽车消费方面，新能源汽车的市场渗透率已经超过百分之四十。"
    "多家车企宣布降价促销，价格竞争日趋激烈，部分中小企业面临较大的经营压力。"
    "在能源方面，国家能源局表示，今年将新增风电和太阳能发电装机容量两亿千瓦以上。"
    "煤炭产量保持稳定，电力供应总体充足，迎峰度夏的准备工作已经提前展开。"
    "在农业方面，各地春耕春播进展顺利，冬小麦长势总体好于常年。"
    "农业农村部提醒，部分地区可能出现干旱天气，要求做好抗旱保苗工作。"
    "在区域发展方面，长三角和粤港澳大湾区的经济增速继续领先全国。"
    "中西部省份依托产业转移，工业投资增长较快。"
    "东北地区则面临人口外流和产业结构单一等问题，经济复苏相对缓慢。"
    "国务院日前召开常务会议，研究部署推动大规模设备更新和消费品以旧换新的行动方案。"
    "会议强调，要坚持市场主导、政府引导，注重发挥标准的引领作用。"
    "全年百分之五左右的增长目标能否实现？"
    "市场人士普遍预计，第二季度经济增速可能略有放缓，但实现全年目标仍有希望。"
)
JAPANESE_NEWS = (
    "日本銀行は十九日、金融政策決定会合でマイナス金利政策の解除を決めた。"
    "利上げは十七年ぶりで、大規模な金融緩和策は大きな転換点を迎えた。"
    "植田総裁は記者会見で「賃金と物価の好循環が強まっている」と述べた。"
)
THAI_RUN = "ประเทศไทยมีประชากรประมาณหกสิบหกล้านคนและเมืองหลวงคือกรุงเทพมหานคร" * 40
EMOJI_RUN = "👍🏽👨‍👩‍👧‍👦😀🎉" * 400


def _check(chunker, text, passages):
    """Every passage within max_tokens, its text exactly its span; together they cover the text without gaps."""
    assert passages[0].char_start == 0 and passages[-1].char_end == len(text)
    for p, q in zip(passages, passages[1:], strict=False):
        assert p.char_start < q.char_start and not text[p.char_end : q.char_start].strip()
    for p in passages:
        assert text[p.char_start : p.char_end] == p.text
        assert p.n_tokens == chunker.count(p.text) <= chunker.max_tokens


def _chunk(chunker, text):
    passages = chunker.chunk(Article("x", "t", text))
    _check(chunker, text, passages)
    return passages


def test_chinese_sentences_end_at_full_width_stops_and_are_packed_whole():
    assert len(CHINESE_NEWS) > 1500
    sentences = [CHINESE_NEWS[s:e] for s, e in sentence_spans(CHINESE_NEWS)]
    assert len(sentences) == sum(CHINESE_NEWS.count(stop) for stop in "。！？") and "".join(sentences) == CHINESE_NEWS
    quote = "他说：“我们将继续实施积极的财政政策和稳健的货币政策，巩固经济回升向好的态势。”"
    assert quote in sentences  # the closing quote stays with its sentence
    assert "全年百分之五左右的增长目标能否实现？" in sentences and sentences[11].endswith("！")
    chunker = Chunker(max_tokens=160, overlap_tokens=40)
    assert chunker.count(CHINESE_NEWS) > 1000  # once a single passage of 1,000+ tokens
    passages = _chunk(chunker, CHINESE_NEWS)
    starts = {s for s, _ in sentence_spans(CHINESE_NEWS)}
    assert len(passages) > 6 and all(p.char_start in starts for p in passages)  # whole sentences only
    japanese = [JAPANESE_NEWS[s:e] for s, e in sentence_spans(JAPANESE_NEWS)]
    assert japanese[2] == "植田総裁は記者会見で「賃金と物価の好循環が強まっている」と述べた。"


def _chinese_run():
    """1,500 Chinese characters without any punctuation or space."""
    return ("".join(ch for ch in CHINESE_NEWS if ch.isalnum()) * 2)[:1500]


def test_runs_without_spaces_or_stops_are_cut_at_characters():
    chinese_run = _chinese_run()
    assert len(chinese_run) == 1500 and len(sentence_spans(chinese_run)) == 1
    for text in (chinese_run, THAI_RUN, EMOJI_RUN, "Intro sentence here. " + THAI_RUN + " And an ending."):
        chunker = Chunker(max_tokens=60, overlap_tokens=10)
        passages = _chunk(chunker, text)
        assert len(passages) > 3
    emoji = _chunk(Chunker(max_tokens=20, overlap_tokens=0), EMOJI_RUN)
    for p in emoji:  # a cut never separates a skin tone or a joined family member from its emoji
        assert p.text[0] not in "\u200d\U0001f3fd" and (p.char_start == 0 or EMOJI_RUN[p.char_start - 1] != "\u200d")
    thai = _chunk(Chunker(max_tokens=20, overlap_tokens=0), THAI_RUN)
    assert all(not unicodedata.category(p.text[0]).startswith("M") for p in thai)  # no vowel sign cut off


def test_model_limit_still_shrinks_passages_of_a_run():
    chinese_run = _chinese_run()
    limited = Chunker(max_tokens=160, overlap_tokens=0, model_limit=lambda ts: [len(t) <= 40 for t in ts])
    passages = _chunk(limited, chinese_run)
    assert all(len(p.text) <= 40 for p in passages) and "".join(p.text for p in passages) == chinese_run


def test_a_huge_word_is_cut_in_seconds():
    rng = random.Random(7)
    url = "https://example.com/download?data=" + "".join(rng.choices(string.ascii_letters + "+/=", k=50_000))
    texts = {
        "2 MB of one letter": "a" * 2_000_000,
        "2 MB of random letters": "".join(rng.choices(string.ascii_letters, k=2_000_000)),
        "a 50 KB URL in a sentence": f"The file is at {url} and nowhere else. Nothing more was said about it.",
    }
    chunker = Chunker()
    for name, text in texts.items():
        started = time.perf_counter()
        passages = _chunk(chunker, text)
        took = time.perf_counter() - started
        print(f"\n{name}: {len(passages)} passages of at most {chunker.max_tokens} tokens in {took:.2f} s")  # with -s
        assert took < 60  # a safety net only: seconds here, where counting the whole word at once was BPE-bound
    assert passages[-1].text.endswith(" and nowhere else. Nothing more was said about it.")  # sentences stay whole


def test_random_mixed_text_stays_within_budget():
    rng = random.Random(3)
    alphabet = [*"abcdefghij ABC.,!?。！？」\n\t", "é", "e\u0301", "中", "文", "ไ", "ทย", "http://x.y/", "=="]
    alphabet += ["👍🏽", "👨‍👩‍👧"]
    for _ in range(150):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 2000))).strip() or "x"
        max_tokens = rng.choice([8, 9, 12, 20, 50, 160])
        chunker = Chunker(max_tokens, rng.randrange(0, max_tokens))
        _chunk(chunker, text)  # once, a word such as "👍🏽ag!?" counted 20 tokens after a space and 21 alone
