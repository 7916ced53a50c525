from enum import StrEnum


class QuizError(StrEnum):
    BAD_QUESTION = "quiz.bad_question"
    BAD_IMPORT = "quiz.bad_import"
    NOT_ENOUGH_QUESTIONS = "quiz.not_enough_questions"
    ATTEMPTS_TODAY = "quiz.no_attempts_left_today"
    ATTEMPT_NOT_FOUND = "attempt.not_found"
    ALREADY_SUBMITTED = "quiz.already_submitted"
