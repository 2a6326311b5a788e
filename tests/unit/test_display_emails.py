"""Messages that name a person keep the email as plain text: a code span, which
Markdown never turns into a mailto link (it links an email even when escaped)."""

from pages.ui.display import escape_markdown, markdown_with_plain_emails


def test_an_email_in_a_message_is_put_in_a_code_span_and_the_rest_escaped():
    text = "Created ada.l+ops@example.test (Ops); *their* sessions ended."
    assert markdown_with_plain_emails(text) == (
        escape_markdown("Created ")
        + "`ada.l+ops@example.test`"
        + escape_markdown(" (Ops); *their* sessions ended.")
    )


def test_every_email_is_kept_plain_and_text_without_one_is_only_escaped():
    assert markdown_with_plain_emails("a@x.io and b@y.co.uk").count("`") == 4
    assert markdown_with_plain_emails("No one [here]") == escape_markdown("No one [here]")
