"""Helpers the members tests share: a roster file with good rows and every kind of bad one."""

from __future__ import annotations

from tests.members.conftest import bad_checksum, id_number, x_number

GOOD_1 = id_number("44010619900307123")
GOOD_2 = id_number("44010619850611004")
GOOD_3 = x_number()
GOOD_4 = id_number("44030519921212555")


def broken_rows() -> list[list[str]]:
    return [
        ["张三", GOOD_1, "13812345678", "M001", "GZ-TH-01", "2020-01-15"],  # 2 good
        ["李四", GOOD_2, "", "", "GZ-TH", "2019/3/8"],  # 3 good
        ["王五", bad_checksum(id_number("44010619770707321")), "", "", "GZ", ""],  # 4
        ["赵六", id_number("44010619880808111"), "", "", "NOPE", ""],  # 5 unknown org
        ["钱七", id_number("44010619660606222"), "", "", "SZ-NS-01", ""],  # 6 other city
        ["张三", GOOD_1, "13812345678", "M001", "GZ-TH-01", ""],  # 7 duplicate of 2
        ["孙八", id_number("44010619990909333"), "12345", "", "GZ", ""],  # 8 phone
        ["周九", id_number("44010619991010444"), "", "", "GZ", "2020-13-45"],  # 9 join date
        ["吴十", id_number("44010619901340123"), "", "", "GZ", ""],  # 10 birth date
        ["郑一", GOOD_3, "+86 139-0000-1111", "", "GZ-TH-01", "20210102"],  # 11 good (X)
        ["", id_number("44010619930303777"), "", "", "GZ", ""],  # 12 no name
        ["冯二", GOOD_4, "", "", "", ""],  # 13 good, defaults to the target org
        ["陈三", bad_checksum(GOOD_4), "999", "", "", ""],  # 14 two errors
    ]
