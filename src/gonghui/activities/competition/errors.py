from enum import StrEnum


class CompetitionError(StrEnum):
    BAD_FORM = "competition.bad_form"
    REGISTRATION_CLOSED = "competition.registration_closed"
    ALREADY_REGISTERED = "competition.already_registered"
    BAD_TEAM = "competition.bad_team"
    ENTRY_NOT_FOUND = "competition_entry.not_found"
    DEADLINE_PASSED = "competition.deadline_passed"
    BAD_FILES = "competition.bad_files"
    PANEL_NOT_FOUND = "competition_panel.not_found"
    PANEL_CLOSED = "competition.panel_closed"
    NOT_A_JUDGE = "competition.not_a_judge"
    BAD_JUDGE = "competition.bad_judge"
    CONFLICT_OF_INTEREST = "competition.conflict_of_interest"
    BAD_SCORES = "competition.bad_scores"
    RESULTS_PUBLISHED = "competition.results_published"
    RESULTS_NOT_PUBLISHED = "competition.results_not_published"
    PANELS_OPEN = "competition.panels_open"
    TEAM_FULL = "competition.team_full"
    TEAM_FORMING = "competition.team_forming"
    BAD_INVITE = "competition.bad_invite"
    BAD_PUBLIC_VOTE = "competition.bad_public_vote"
