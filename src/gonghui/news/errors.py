from enum import StrEnum


class NewsError(StrEnum):
    NOT_FOUND = "news.not_found"
    WRONG_STATUS = "news.wrong_status"
    SELF_REVIEW = "news.self_review"
    NOTE_REQUIRED = "news.note_required"
    AUDIENCE_OUTSIDE = "news.audience_outside"
    AUDIENCE_EMPTY = "news.audience_empty"
    BAD_IMAGE = "news.bad_image"
    IMAGE_NOT_FOUND = "news.image_not_found"
    BAD_ATTACHMENT = "news.bad_attachment"
    ATTACHMENT_NOT_FOUND = "news.attachment_not_found"
    TOO_MANY_ATTACHMENTS = "news.too_many_attachments"
    EMPTY_BODY = "news.empty_body"
    BAD_CURSOR = "news.bad_cursor"
