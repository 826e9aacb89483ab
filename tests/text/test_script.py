"""Cyrillic <-> Latin transliteration (1995 Latin alphabet)."""

import pytest

from ovoz.text import to_cyrillic, to_latin, unify_apostrophes


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("Ўзбекистон", "O\u02bbzbekiston"),
        ("ЎЗБЕКИСТОН", "O\u02bbZBEKISTON"),
        ("Шаҳар", "Shahar"),
        ("ШАҲАР", "SHAHAR"),
        ("ТОШ", "TOSH"),
        ("Ш. Рашидов", "Sh. Rashidov"),
        ("Чойхона", "Choyxona"),
        ("Ғалаба", "G\u02bbalaba"),
        ("қўл", "qo\u02bbl"),
        ("ер", "yer"),
        ("Ер юзи", "Yer yuzi"),
        ("поезд", "poyezd"),
        ("кеча", "kecha"),
        ("съезд", "syezd"),
        ("объект", "obyekt"),
        ("маъно", "ma\u02bcno"),
        ("эълон", "e\u02bclon"),
        ("цирк", "sirk"),
        ("концерт", "konsert"),
        ("милиция", "militsiya"),
        ("сентябрь", "sentyabr"),
        ("батальон", "batalyon"),
        ("Ёшлар", "Yoshlar"),
        ("ЁШЛАР", "YOSHLAR"),
        ("юлдуз", "yulduz"),
        ("Men Ўзбекистонда yashayman", "Men O\u02bbzbekistonda yashayman"),  # mixed script
        ("2024 йил", "2024 yil"),
    ],
)
def test_to_latin_words(cyrillic, latin):
    assert to_latin(cyrillic) == latin


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [
        ("O\u02bbzbekiston", "Ўзбекистон"),
        ("o'zbek", "ўзбек"),
        ("O\u2018ZBEKISTON", "ЎЗБЕКИСТОН"),
        ("yangi", "янги"),  # ng stays н + г
        ("tong", "тонг"),
        ("Shahar", "Шаҳар"),
        ("SHAHAR", "ШАҲАР"),
        ("Choy", "Чой"),
        ("g\u02bbalaba", "ғалаба"),
        ("yo\u02bbl", "йўл"),  # y + oʻ, not yo + ʻ
        ("yoz", "ёз"),
        ("yulduz", "юлдуз"),
        ("yaxshi", "яхши"),
        ("yer", "ер"),
        ("ekin", "экин"),
        ("kecha", "кеча"),
        ("poeziya", "поэзия"),
        ("ma\u02bcno", "маъно"),
        ("ta'lim", "таълим"),
        ("Is\u02bchoq", "Исҳоқ"),  # the tutuq only separates s from h
        ("xalq hayoti", "халқ ҳаёти"),
    ],
)
def test_to_cyrillic_words(latin, cyrillic):
    assert to_cyrillic(latin) == cyrillic


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
