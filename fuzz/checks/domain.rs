//! What the fuzz targets check on the domain's parsers: email addresses and UPNs keep the caller's
//! text and re-parse to themselves; the bulk invitation CSV stays within its row limit and reports
//! rows in file order. Shared by `fuzz/fuzz_targets/` and `crates/domain/tests/fuzz_corpus.rs`.

use guestlist_domain::bulk_invite::{parse_bulk_invitations, MAX_BULK_ROWS};
use guestlist_domain::email::MAX_EMAIL_LENGTH;
use guestlist_domain::upn::{guest_upn, MAX_UPN_LENGTH};
use guestlist_domain::{EmailAddress, Upn};

/// An invitee address and a userPrincipalName from the same text; a valid address makes a valid guest UPN.
pub fn email_and_upn(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(email) = EmailAddress::parse(text) {
        assert_eq!(email.as_str(), text.trim());
        assert!(email.as_str().len() <= MAX_EMAIL_LENGTH);
        assert_eq!(format!("{}@{}", email.local_part(), email.domain()), email.as_str());
        assert_eq!(EmailAddress::parse(email.as_str()).ok(), Some(email.clone()));
        assert!(email.matches(&email.normalized()));
        let guest = guest_upn(&email, "contoso.onmicrosoft.com", None);
        let reparsed = Upn::parse(guest.as_str());
        // Guest UPNs of addresses near the length limit may exceed the UPN limit; anything shorter must parse.
        if guest.as_str().len() <= MAX_UPN_LENGTH {
            assert_eq!(reparsed.ok().as_ref().map(Upn::as_str), Some(guest.as_str()), "guest UPN of {text:?}");
        }
        assert!(guest.is_external());
    }
    if let Ok(upn) = Upn::parse(text) {
        assert_eq!(upn.as_str(), text);
        assert!(upn.as_str().len() <= MAX_UPN_LENGTH);
        assert!(upn.as_str().ends_with(&format!("@{}", upn.domain())));
        assert_eq!(Upn::parse(&upn.normalized()).ok(), Some(upn));
    }
}

/// An uploaded bulk invitation file: at most `MAX_BULK_ROWS` rows, lines ascending from 1.
pub fn bulk_csv(data: &[u8]) {
    // The console's checkbox for rows that leave `sendEmail` blank: both settings are reachable.
    let default_send_email = data.first().is_some_and(|b| b & 1 == 1);
    if let Ok(rows) = parse_bulk_invitations(data, default_send_email) {
        assert!(!rows.is_empty() && rows.len() <= MAX_BULK_ROWS);
        let lines: Vec<u64> = rows.iter().map(|row| row.line).collect();
        assert!(lines[0] >= 1 && lines.windows(2).all(|pair| pair[0] < pair[1]), "{lines:?}");
        for row in &rows {
            if let Ok(request) = &row.request {
                assert!(request.email.matches(&row.email));
            }
        }
    }
}
