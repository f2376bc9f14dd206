//! The bulk invitation file the admin console accepts: Entra's "Bulk invite" CSV template.
//!
//! Entra's template has a version row (`version:v1.0`), a heading row whose cells read
//! `<Item name> [propertyName] <Required or blank>` (e.g. `Email address to invite [inviteeEmail] Required`),
//! and an examples row that users are told to delete. We accept that file as downloaded and filled
//! in, and also a plain heading row of the property names (`inviteeEmail,inviteRedirectURL,...`).
//! Rows are parsed on their own: a bad row is reported with its line and the others still go.

use crate::email::EmailAddress;
use crate::invitation::{validate_redirect_url, InvitationRequest, MessageInfo, MAX_CUSTOM_MESSAGE};
use crate::user::UserType;

/// Rows one upload may hold; a bigger job belongs in a script against `POST /invitations`.
pub const MAX_BULK_ROWS: usize = 1_000;

/// The template's columns, by the property name in brackets.
const EMAIL: &str = "inviteeemail";
const REDIRECT: &str = "inviteredirecturl";
const SEND_EMAIL: &str = "sendemail";
const MESSAGE: &str = "customizedmessagebody";

/// One data row: its line in the file, the address as written, and the request it makes or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRow {
    pub line: u64,
    pub email: String,
    pub request: Result<InvitationRequest, String>,
}

/// Why a whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkFileError {
    #[error(
        "The file has no heading row. Use the template: a heading row with [inviteeEmail] and [inviteRedirectURL], then one row per guest."
    )]
    NoHeadings,
    #[error("The heading row has no {0} column.")]
    MissingColumn(&'static str),
    #[error("The file has no rows to invite.")]
    NoRows,
    #[error("The file has more than {MAX_BULK_ROWS} rows; split it into smaller files.")]
    TooManyRows,
    #[error("The file is not valid CSV text (UTF-8): {0}")]
    Malformed(String),
}

/// The property name of a heading cell: the text in `[...]`, else the whole cell.
fn column_key(cell: &str) -> String {
    let cell = cell.trim();
    let inner = match (cell.find('['), cell.rfind(']')) {
        (Some(open), Some(close)) if open < close => &cell[open + 1..close],
        _ => cell,
    };
    inner.trim().to_ascii_lowercase()
}

struct Columns {
    email: usize,
    redirect: usize,
    send_email: Option<usize>,
    message: Option<usize>,
}

impl Columns {
    fn from_headings(cells: &csv::StringRecord) -> Result<Columns, BulkFileError> {
        let find = |key: &str| cells.iter().position(|cell| column_key(cell) == key);
        Ok(Columns {
            email: find(EMAIL).ok_or(BulkFileError::MissingColumn("[inviteeEmail]"))?,
            redirect: find(REDIRECT).ok_or(BulkFileError::MissingColumn("[inviteRedirectURL]"))?,
            send_email: find(SEND_EMAIL),
            message: find(MESSAGE),
        })
    }
}

/// Parses an uploaded bulk invitation file into one request per data row.
/// `default_send_email` applies where the row leaves `sendEmail` blank (Entra sends by default).
pub fn parse_bulk_invitations(bytes: &[u8], default_send_email: bool) -> Result<Vec<BulkRow>, BulkFileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| BulkFileError::Malformed(e.to_string()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // Excel saves UTF-8 with a BOM.
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut columns: Option<Columns> = None;
    let mut rows = Vec::new();
    let mut lines = LineCounter { text: text.as_bytes(), counted_to: 0, line: 1 };
    for record in reader.records() {
        let record = record.map_err(|e| BulkFileError::Malformed(e.to_string()))?;
        // The line a record starts on, counted from its byte offset: the csv crate's own line
        // count is one short after CRLF line ends (the template's, Excel's).
        let mut start = record.position().map_or(0, |p| p.byte() as usize).min(text.len());
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1; // a record's position may point at the line end before it
        }
        let line = lines.advance_to(start);
        let blank = record.iter().all(|cell| cell.trim().is_empty());
        let first = record.get(0).unwrap_or_default().trim();
        if blank || first.to_ascii_lowercase().starts_with("version:") {
            continue;
        }
        let Some(columns) = &columns else {
            columns = Some(Columns::from_headings(&record)?);
            continue;
        };
        // The template's examples row, if the user left it in.
        if first.to_ascii_lowercase().starts_with("example") {
            continue;
        }
        if rows.len() == MAX_BULK_ROWS {
            return Err(BulkFileError::TooManyRows);
        }
        let cell = |index: usize| record.get(index).map(str::trim).unwrap_or_default();
        let cell_at = |index: Option<usize>| index.map(cell).filter(|v| !v.is_empty());
        let email = cell(columns.email).to_string();
        let request =
            row_request(&email, cell(columns.redirect), cell_at(columns.send_email), cell_at(columns.message), default_send_email);
        rows.push(BulkRow { line, email, request });
    }
    if columns.is_none() {
        return Err(BulkFileError::NoHeadings);
    }
    if rows.is_empty() {
        return Err(BulkFileError::NoRows);
    }
    Ok(rows)
}

/// The line of a byte offset, counting line ends as the csv reader does (`\n`, `\r\n` and a lone `\r`) and
/// moving forward only, so a file costs one pass however many rows it has.
struct LineCounter<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn advance_to(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.text.len());
        for index in self.counted_to..offset {
            let byte = self.text[index];
            if byte == b'\n' || (byte == b'\r' && self.text.get(index + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.counted_to = self.counted_to.max(offset);
        self.line
    }
}

fn row_request(
    email: &str,
    redirect: &str,
    send_email: Option<&str>,
    message: Option<&str>,
    default_send_email: bool,
) -> Result<InvitationRequest, String> {
    if email.is_empty() {
        return Err("The email address to invite is required.".into());
    }
    let email = EmailAddress::parse(email).map_err(|e| e.to_string())?;
    if redirect.is_empty() {
        return Err("The redirection URL is required.".into());
    }
    let redirect_url = validate_redirect_url(redirect).map_err(|e| e.to_string())?;
    let send_invitation_message = match send_email.map(str::to_ascii_lowercase).as_deref() {
        None => default_send_email,
        Some("true" | "yes" | "1") => true,
        Some("false" | "no" | "0") => false,
        Some(_) => return Err("Send invitation message must be true or false.".into()),
    };
    if message.is_some_and(|m| m.chars().count() > MAX_CUSTOM_MESSAGE) {
        return Err(format!("The customized invitation message is longer than {MAX_CUSTOM_MESSAGE} characters."));
    }
    let message_info = message.map(|body| MessageInfo {
        customized_message_body: Some(body.to_string()),
        message_language: None,
        cc_recipients: Vec::new(),
    });
    Ok(InvitationRequest {
        email,
        redirect_url,
        display_name: None,
        send_invitation_message,
        message_info,
        user_type: UserType::Guest,
        reset_redemption: false,
        invited_user_id: None,
        sponsors: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE_HEAD: &str = "version:v1.0\nEmail address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]\n";

    /// Found by fuzzing: a lone CR ends a record for the csv reader, so it starts a line too (two rows had one line).
    #[test]
    fn lone_carriage_returns_count_as_line_ends() {
        let file = "inviteeEmail,inviteRedirectURL\ra@example.com,https://x.example\rb@example.com,https://x.example\r\nc@example.com,https://x.example\n";
        let lines: Vec<u64> = parse_bulk_invitations(file.as_bytes(), true).unwrap().iter().map(|row| row.line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn reads_entras_template_with_its_examples_row() {
        let file = format!(
            "{TEMPLATE_HEAD}Example: name@domain.com,Example: https://myapps.microsoft.com,Example: true,Example: Hello\nann@example.com,https://myapps.microsoft.com,true,\"Welcome, Ann\"\nbob@example.org,https://contoso.com/start,false,\n"
        );
        let rows = parse_bulk_invitations(file.as_bytes(), true).unwrap();
        assert_eq!(rows.len(), 2);
        let ann = rows[0].request.as_ref().unwrap();
        assert_eq!(rows[0].line, 4);
        assert_eq!(ann.email.as_str(), "ann@example.com");
        assert!(ann.send_invitation_message);
        assert_eq!(ann.message_info.as_ref().unwrap().customized_message_body.as_deref(), Some("Welcome, Ann"));
        let bob = rows[1].request.as_ref().unwrap();
        assert!(!bob.send_invitation_message);
        assert_eq!(bob.redirect_url, "https://contoso.com/start");
        assert!(bob.message_info.is_none());
    }

    #[test]
    fn plain_headings_in_any_order_and_a_bom() {
        let file = "\u{feff}inviteRedirectURL,inviteeEmail\r\nhttps://x.example,cy@example.net\r\n";
        let rows = parse_bulk_invitations(file.as_bytes(), false).unwrap();
        let cy = rows[0].request.as_ref().unwrap();
        assert_eq!(cy.email.as_str(), "cy@example.net");
        assert!(!cy.send_invitation_message, "blank sendEmail takes the default");
    }

    #[test]
    fn a_bad_row_is_reported_and_the_others_stay() {
        let file = format!(
            "{TEMPLATE_HEAD}not-an-address,https://x.example,,\nok@example.com,ftp://x.example,,\nfine@example.com,https://x.example,maybe,\n,https://x.example,,\ngood@example.com,https://x.example,,\n"
        );
        let rows = parse_bulk_invitations(file.as_bytes(), true).unwrap();
        let errors: Vec<_> = rows.iter().map(|r| r.request.as_ref().err().cloned()).collect();
        assert!(errors[0].as_deref().is_some_and(|e| e.contains("not-an-address")), "{errors:?}");
        assert!(errors[1].as_deref().is_some_and(|e| e.contains("inviteRedirectUrl")), "{errors:?}");
        assert_eq!(errors[2].as_deref(), Some("Send invitation message must be true or false."));
        assert_eq!(errors[3].as_deref(), Some("The email address to invite is required."));
        assert_eq!(errors[4], None);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn lines_count_the_same_with_crlf_and_quoted_newlines() {
        let crlf = "inviteeEmail,inviteRedirectURL,customizedMessageBody\r\na@b.example,https://x.example,\r\n\r\nc@b.example,https://x.example,\"two\r\nlines\"\r\nbad,https://x.example,\r\n";
        let rows = parse_bulk_invitations(crlf.as_bytes(), true).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4, 6]);
        let lf = crlf.replace("\r\n", "\n");
        let rows = parse_bulk_invitations(lf.as_bytes(), true).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 4, 6]);
    }

    #[test]
    fn whole_file_refusals() {
        assert_eq!(parse_bulk_invitations(b"", true), Err(BulkFileError::NoHeadings));
        assert_eq!(parse_bulk_invitations(b"version:v1.0\n", true), Err(BulkFileError::NoHeadings));
        assert_eq!(parse_bulk_invitations(b"email,url\na@b.com,https://x\n", true), Err(BulkFileError::MissingColumn("[inviteeEmail]")));
        assert_eq!(parse_bulk_invitations(TEMPLATE_HEAD.as_bytes(), true), Err(BulkFileError::NoRows));
        assert!(matches!(parse_bulk_invitations(b"\xff\xfe", true), Err(BulkFileError::Malformed(_))));
        let mut big = String::from("inviteeEmail,inviteRedirectURL\n");
        for i in 0..=MAX_BULK_ROWS {
            big.push_str(&format!("g{i}@example.com,https://x.example\n"));
        }
        assert_eq!(parse_bulk_invitations(big.as_bytes(), true), Err(BulkFileError::TooManyRows));
    }
}
