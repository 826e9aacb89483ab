"""Cyrillic <-> Latin transliteration (1995 Latin alphabet)."""

import tomllib
import unicodedata
from importlib import resources
from pathlib import Path

import pytest

from ovoz.text import replace_legacy_letters, to_cyrillic, to_latin, unify_apostrophes

# Sources: "rule N" and "appendix N" are the numbered spelling rules approved by Cabinet decree 339 of
# 24 August 1995 and their appendix on the Cyrillic letters; "grammar" is the school grammar texts that
# compare Cyrillic and Latin spellings; "NeMo SDP" is the Uzbek data preparation of NVIDIA's
# NeMo-speech-data-processor (dataset_configs/uzbek/mcv/config.yaml); "alphabet" is the letter table of the
# 1995 Latin alphabet; "ovoz" marks ovoz's own conventions.
TO_LATIN = [
    # (Cyrillic, Latin, source)
    ("Ўзбекистон", "O\u02bbzbekiston", "alphabet: ў is oʻ"),
    ("ЎЗБЕКИСТОН", "O\u02bbZBEKISTON", "ovoz: capitals kept"),
    ("Шаҳар", "Shahar", "alphabet: ш is sh, ҳ is h"),
    ("ШАҲАР", "SHAHAR", "ovoz: all-caps digraphs"),
    ("ТОШ", "TOSH", "ovoz: all-caps digraphs"),
    ("Чойхона", "Choyxona", "alphabet: ч is ch, х is x"),
    ("Ғалаба", "G\u02bbalaba", "alphabet: ғ is gʻ"),
    ("қўл", "qo\u02bbl", "alphabet"),
    ("ер", "yer", "grammar: е at the start of a word is ye (ер - yer)"),
    ("Ер юзи", "Yer yuzi", "appendix 1.1: ю is yu"),
    ("поезд", "poyezd", "rule 2.2 lists poyezd: е after a vowel is ye"),
    ("кеча", "kecha", "grammar: е after a consonant is e (кел - kel)"),
    ("Ёшлар", "Yoshlar", "appendix 1.1: ё is yo"),
    ("ЁШЛАР", "YOSHLAR", "appendix 1.1"),
    ("юлдуз", "yulduz", "appendix 1.1 (yutuq)"),
    ("ёмғир", "yomg\u02bbir", "appendix 1.1: ёмғир - yomgʻir"),
    ("заём", "zayom", "appendix 1.1: заём - zayom"),
    # ъ: dropped in Russian loans before е ё ю я, the tutuq elsewhere (appendix 3, rule 32)
    ("съезд", "syezd", "appendix 3.1 (разъезд - razyezd)"),
    ("разъезд", "razyezd", "appendix 3.1: разъезд - razyezd"),
    ("адъютант", "adyutant", "appendix 3.1: адъютант - adyutant"),
    ("объект", "obyekt", "appendix 3.1"),
    ("маъно", "ma\u02bcno", "appendix 3.2: маъно - maʼno"),
    ("санъат", "san\u02bcat", "appendix 3.2, rule 32.2 (sanʼat)"),
    ("эълон", "e\u02bclon", "rule 32.1 (eʼlon)"),
    ("маъюс", "ma\u02bcyus", "rule 32.1 (maʼyus): ъ after a vowel before ю is the tutuq"),
    ("меъёр", "me\u02bcyor", "rule 32.1: ъ after a vowel before ё is the tutuq"),
    ("шеър", "she\u02bcr", "rule 32.1 (sheʼr)"),
    ("мўъжиза", "mo\u02bbjiza", "rule 32.1: mo‘jiza, no tutuq after oʻ"),
    ("мўътадил", "mo\u02bbtadil", "rule 32.1: mo‘tadil"),
    # ц: s at the start and end of a word, after a consonant and after a prefix; ts between vowels (appendix 4)
    ("цирк", "sirk", "appendix 4.1, grammar: цирк - sirk"),
    ("целлофан", "sellofan", "appendix 4.1: целлофан - sellofan"),
    ("кварц", "kvars", "appendix 4.1: кварц - kvars"),
    ("абзац", "abzas", "appendix 4.1, grammar: абзац - abzas"),
    ("абзацлар", "abzaslar", "appendix 4.1: the end of the word abzas, before an ending"),
    ("антициклон", "antisiklon", "appendix 4.1: антициклон - antisiklon"),
    ("конструкция", "konstruksiya", "appendix 4.1: конструкция - konstruksiya"),
    ("концерт", "konsert", "appendix 4.1: after a consonant"),
    ("акция", "aksiya", "grammar: акция - aksiya"),
    ("глицерин", "glitserin", "appendix 4.2: глицерин - glitserin"),
    ("конституция", "konstitutsiya", "appendix 4.2: конституция - konstitutsiya"),
    ("лицей", "litsey", "grammar: лицей - litsey"),
    ("милиция", "militsiya", "appendix 4.2"),
    ("щ", "sh", "appendix 5"),
    ("община", "obshina", "appendix 5: община - obshina"),
    ("мещан", "meshshan", "appendix 5: мещан - meshshan (exception list)"),
    ("вымпел", "vimpel", "appendix 6: вымпел - vimpel"),
    # ь: dropped, y before о and и (appendix 2)
    ("альбом", "albom", "appendix 2.1: альбом - albom"),
    ("апрель", "aprel", "appendix 2.1: апрель - aprel"),
    ("интервью", "intervyu", "appendix 2.2a: интервью - intervyu"),
    ("премьера", "premyera", "appendix 2.2a: премьера - premyera"),
    ("фортепьяно", "fortepyano", "appendix 2.2a: фортепьяно - fortepyano"),
    ("павильон", "pavilyon", "appendix 2.2b: павильон - pavilyon"),
    ("батальон", "batalyon", "appendix 2.2b"),
    ("Ильин", "Ilyin", "appendix 2.2b: Ильин - Ilyin"),
    # dictionary spellings (data/exceptions.tsv)
    ("сентябрь", "sentabr", "rule 1.1 (sentabr), grammar: сентябрь - sentabr"),
    ("Сентябрда", "Sentabrda", "rule 1.1, with an ending and a capital"),
    ("октябрь", "oktabr", "grammar: октябрь - oktabr"),
    ("ноябрь", "noyabr", "rule 1.1 (noyabr): the letter rules already give it"),
    ("отряд", "otrad", "grammar: отряд - otrad"),
    ("шляпа", "shlapa", "grammar: шляпа - shlapa"),
    ("фляга", "flaga", "appendix 1.2a: фляга - flaga"),
    ("бюджет", "budjet", "appendix 1.2a: бюджет - budjet"),
    ("БЮДЖЕТ", "BUDJET", "appendix 1.2a, all capitals"),
    ("стажёр", "stajor", "appendix 1.2a: стажёр - stajor"),
    ("алюминий", "aluminiy", "rule 4.1 (aluminiy)"),
    ("режиссёр", "rejissor", "grammar: режиссёр - rejissor"),
    ("плёнка", "plyonka", "appendix 1.2b: плёнка - plyonka"),
    ("бюрократ", "byurokrat", "appendix 1.2b: бюрократ - byurokrat"),
    ("славян", "slavyan", "appendix 1.2b: славян - slavyan"),
    # initials and сҳ
    ("Ё. Жумаев", "Y. Jumayev", "issue 19 reference list: initials take the Latin first letter"),
    ("Ю. Раҳимов", "Y. Rahimov", "issue 19 reference list: initials"),
    ("Ш. Рашидов", "Sh. Rashidov", "ovoz: a digraph initial keeps both letters (Sh. Ch. Shamsiddinov)"),
    ("Ё у, ё бу", "Yo u, yo bu", "ovoz: the word ё is not an initial"),
    ("Исҳоқ", "Is\u02bchoq", "ovoz: сҳ is sʼh so that it does not read as sh"),
    ("асҳоб", "as\u02bchob", "ovoz: сҳ is sʼh"),
    ("Men Ўзбекистонда yashayman", "Men O\u02bbzbekistonda yashayman", "ovoz: mixed script"),
    ("2024 йил", "2024 yil", "ovoz: digits pass through"),
    ("Õzbekiston ŞAHRI", "O\u02bbzbekiston SHAHRI", "NeMo SDP: substitute letters"),
]


@pytest.mark.parametrize(("cyrillic", "latin", "source"), TO_LATIN)
def test_to_latin(cyrillic, latin, source):
    assert to_latin(cyrillic) == latin, source


TO_CYRILLIC = [
    # (Latin, Cyrillic, source)
    ("O\u02bbzbekiston", "Ўзбекистон", "alphabet"),
    ("o'zbek", "ўзбек", "ovoz: apostrophes unified first"),
    ("O\u2018ZBEKISTON", "ЎЗБЕКИСТОН", "ovoz"),
    ("yangi", "янги", "alphabet: ng is н + г"),
    ("tong", "тонг", "alphabet"),
    ("Shahar", "Шаҳар", "alphabet"),
    ("SHAHAR", "ШАҲАР", "alphabet"),
    ("Choy", "Чой", "alphabet"),
    ("g\u02bbalaba", "ғалаба", "alphabet"),
    ("yo\u02bbl", "йўл", "alphabet: y + oʻ, not yo + ʻ"),
    ("yoz", "ёз", "appendix 1.1"),
    ("yulduz", "юлдуз", "appendix 1.1"),
    ("yaxshi", "яхши", "appendix 1.1"),
    ("ayol", "аёл", "appendix 1.1 (Uzbek words: ё after a vowel)"),
    ("yer", "ер", "grammar: ер - yer"),
    ("ekin", "экин", "grammar: э at the start of a word"),
    ("kecha", "кеча", "grammar"),
    ("poeziya", "поэзия", "grammar: поэзия, э after a vowel"),
    ("ma\u02bcno", "маъно", "appendix 3.2"),
    ("ta'lim", "таълим", "appendix 3.2"),
    ("Is\u02bchoq", "Исҳоқ", "ovoz: sʼh is сҳ"),
    ("xalq hayoti", "халқ ҳаёти", "alphabet"),
    ("mayor", "майор", "exception list: й before a vowel in a loan"),
    ("general-mayor", "генерал-майор", "exception list, after a hyphen"),
    ("rayonda", "районда", "exception list: район"),
    ("Yoga", "Йога", "exception list: йога"),
    ("mayonez", "майонез", "exception list"),
    ("budjet", "бюджет", "appendix 1.2a"),
    ("stajor", "стажёр", "appendix 1.2a"),
    ("aluminiy", "алюминий", "rule 4.1"),
    ("flag", "флаг", "exception list: фляга is to_latin only"),
    ("\u014fzbek \u011fisht \u015fahar", "ўзбек ғишт шаҳар", "NeMo SDP: substitute letters"),
]


@pytest.mark.parametrize(("latin", "cyrillic", "source"), TO_CYRILLIC)
def test_to_cyrillic(latin, cyrillic, source):
    assert to_cyrillic(latin) == cyrillic, source


@pytest.mark.parametrize("cyrillic", ["Исҳоқ", "асҳоб", "мусҳаф", "майор", "район", "бюджет", "маъно", "ёмғир"])
def test_round_trip(cyrillic):
    assert to_cyrillic(to_latin(cyrillic)) == cyrillic


LEGACY = [
    # NeMo SDP maps these before training; the 1993 alphabet used some of them
    ("\u00f5", "o\u02bb"),
    ("\u014f", "o\u02bb"),
    ("o\u0306", "o\u02bb"),  # o + combining breve, composed first
    ("\u011f", "g\u02bb"),
    ("\u1e21", "g\u02bb"),
    ("\u015f", "sh"),
    ("\u00e7", "ch"),
    ("\u00f1", "ng"),
    ("\u015eahar", "Shahar"),
    ("\u015eAHAR", "SHAHAR"),
    ("\u00d5zbek", "O\u02bbzbek"),
    ("si\u1e21ir", "sig\u02bbir"),  # NeMo SDP's own test case
    ("oddiy matn", "oddiy matn"),
]


@pytest.mark.parametrize(("text", "expected"), LEGACY)
def test_replace_legacy_letters(text, expected):
    assert replace_legacy_letters(unicodedata.normalize("NFC", text)) == expected


def test_exception_list_is_package_data():
    # The list ships inside the package (pyproject's package-data) and every row is well formed.
    rows = resources.files("ovoz.text").joinpath("data/exceptions.tsv").read_text(encoding="utf-8").splitlines()
    rows = [row.split("\t") for row in rows if row and not row.startswith("#")]
    assert rows[0] == ["cyrillic", "latin", "direction", "source"]
    for cyrillic, latin, direction, source in rows[1:]:
        assert direction in ("both", "to_latin", "to_cyrillic") and source
        assert cyrillic == cyrillic.lower() and latin == latin.lower()
        if direction != "to_cyrillic":
            assert to_latin(cyrillic).startswith(latin)
        if direction != "to_latin":
            assert to_cyrillic(latin).startswith(cyrillic)
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/*.tsv" in pyproject["tool"]["setuptools"]["package-data"]["ovoz.text"]


# Common Voice sentences (CC0) and their Uzbek Cyrillic spelling, transliterated and checked by hand.
SENTENCES = [
    ("Farg\u2018onada tong shunday otadi.", "Фарғонада тонг шундай отади."),
    (
        "O\u2018tgan yili Qo\u2018qon jamoasi o\u2018z maydonida Paxtakorni qabul qilgandi.",
        "Ўтган йили Қўқон жамоаси ўз майдонида Пахтакорни қабул қилганди.",
    ),
    ("Bog\u2018bon tizzalab o\u2018tirdi.", "Боғбон тиззалаб ўтирди."),
    ("Ular Turk xoqonligi tarkibiga kirgan.", "Улар Турк хоқонлиги таркибига кирган."),
    (
        "Rahbar va ilmiy ishning yetakchi olimlari yosh olimning kamchiliklarini bildirib, yo\u2018l ko\u2018rsatishadi.",
        "Раҳбар ва илмий ишнинг етакчи олимлари ёш олимнинг камчиликларини билдириб, йўл кўрсатишади.",
    ),
    (
        "O\u02bbsha ishni asosiy kasbiga aylantira olishi kerak.",
        "Ўша ишни асосий касбига айлантира олиши керак.",
    ),
    (
        "Bizdek daromadga ega mamlakatlar uchun bu g\u2018ayritabiiy xulosa.",
        "Биздек даромадга эга мамлакатлар учун бу ғайритабиий хулоса.",
    ),
    (
        "Ne\u2019matlaringni sanasang, o\u2018kinching kamayadi.",
        "Неъматларингни санасанг, ўкинчинг камаяди.",
    ),
    (
        "Ma\u2019lumot uchun, mamlakat bozorlarida sabzi narxi keskin ko\u2018tarilib ketdi.",
        "Маълумот учун, мамлакат бозорларида сабзи нархи кескин кўтарилиб кетди.",
    ),
    ("Mahalla qayerga qarayapti?", "Маҳалла қаерга қараяпти?"),
    ("Aravalar yana yurishda davom etdi.", "Аравалар яна юришда давом этди."),
    (
        "Me\u2019morchilik O\u2018zbekistonning eng dolzarb masalalaridan biriga aylanmoqda.",
        "Меъморчилик Ўзбекистоннинг энг долзарб масалаларидан бирига айланмоқда.",
    ),
    (
        "Suv ostidagi dunyo suvosti kemasi orqali kashf etildi.",
        "Сув остидаги дунё сувости кемаси орқали кашф этилди.",
    ),
]


@pytest.mark.parametrize(("latin", "cyrillic"), SENTENCES)
def test_real_sentences_to_latin(latin, cyrillic):
    assert to_latin(cyrillic) == unify_apostrophes(latin)


@pytest.mark.parametrize(("latin", "cyrillic"), SENTENCES)
def test_real_sentences_to_cyrillic(latin, cyrillic):
    assert to_cyrillic(latin) == cyrillic


def test_ts_rule_in_a_real_sentence():
    # ц after a consonant is s (vaksina, potensial); Latin to Cyrillic cannot restore it.
    cyrillic = (
        "Учинчидан, вакциналарни кечиктириш потенциал равишда юзлаб одамларнинг ҳаётига хавф деб баҳоланиши керак."
    )
    latin = "Uchinchidan, vaksinalarni kechiktirish potensial ravishda yuzlab odamlarning hayotiga xavf deb baholanishi kerak."
    assert to_latin(cyrillic) == latin
