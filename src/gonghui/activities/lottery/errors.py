from enum import StrEnum


class LotteryError(StrEnum):
    NO_CHANCES = "lottery.no_chances"
    NOT_ENDED = "lottery.not_ended"
