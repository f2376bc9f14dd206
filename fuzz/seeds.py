#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/<sha1 of the input>, from real Graph queries (README, API tests,
Microsoft's docs) and the edge cases the parsers refuse. Re-run after editing; files found by fuzzing sit beside them."""
import base64, hashlib, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
TENANT = "7b9e0c5e-4a4f-4f31-9f6e-2f1f6a6f3c11"
APP = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
OID = "0d6a1e7c-2b0f-4c27-bb5e-8f4f7e5d2a90"

USER_FILTERS = [
    "userType eq 'Guest'", "USERTYPE EQ 'Guest'", "displayName eq 'O''Brien'", "displayName eq ''''", "displayName eq ''",
    "accountEnabled eq false", "accountEnabled ne true", "userType eq null", "createdDateTime ge 2024-01-01T00:00:00Z",
    "externalUserStateChangeDateTime lt 2024-06-01T12:30:00.5-02:00", "userType in ('Guest', 'Member')",
    "startsWith(displayName,'Al')", "STARTSWITH( displayName , 'Al' )", "endsWith(userPrincipalName,'#EXT#@contoso.onmicrosoft.com')",
    "otherMails/any(x:x eq 'a@b.com')", "proxyAddresses/any(p: p eq 'SMTP:a@b.com')", "otherMails/any(x:startsWith(x,'a'))",
    "othermails/ANY(x:endswith(x,'.org'))", "otherMails/any(x:x in ('a@b.com','c@d.com'))",
    "identities/any(c:c/issuerAssignedId eq 'ann@example.com' and c/issuer eq 'mail')", "identities/any(id:id/signInType eq 'federated')",
    "otherMails/$count eq 0", "proxyAddresses/$count ne 1", "mail eq 'a' or mail eq 'b' and mail eq 'c'",
    "(mail eq 'a' or mail eq 'b') and mail eq 'c'", "not(userType eq 'Guest')", "not(not(userType eq 'Guest'))",
    "not(startsWith(mail,'a')) and userType eq 'Guest'", "  userType   eq\t'Guest'  ", "(userType eq 'Guest')and(userType eq 'Guest')",
    "externalUserState eq 'PendingAcceptance'", "mail eq 'dee@example.com' or mail eq 'eve@example.org'",
    "id eq '0d6a1e7c-2b0f-4c27-bb5e-8f4f7e5d2a90'", "userType eq", "userType eq 'Guest", "startsWith(displayName)", "otherMails/any(x:",
    "(" * 60 + "userType eq 'Guest'" + ")" * 60, " or ".join(["userType eq 'Guest'"] * 60), "createdDateTime ge 2024-13-45T99:00:00Z",
    "accountEnabled eq 1", "signInActivity/lastSignInDateTime le 2024-01-01T00:00:00Z", "displayName eq '\u00e9\u00e8\U0001F600'",
]
GROUP_FILTERS = [
    "securityEnabled eq false", "groupTypes/any(c:c eq 'Unified')", "startsWith(displayName,'Sales')", "endsWith(displayName,'EU')",
    "displayName eq 'Sales EU'", "mailEnabled eq true and securityEnabled eq false", "mail eq 'sales@contoso.com'",
    "not(securityEnabled eq true)", "displayName in ('A','B')", "groupTypes/any(c:c eq 'DynamicMembership')", "visibility eq 'Private'",
    "createdDateTime ge 2024-01-01T00:00:00Z", "nope eq 1", "displayName eq", "(" * 55 + "securityEnabled eq true" + ")" * 55,
]
AUDIT_FILTERS = [
    "category eq 'UserManagement'", "activityDisplayName eq 'Invite external user'", "startsWith(activityDisplayName,'Invite')",
    "activityDateTime ge 2024-01-01T00:00:00Z and activityDateTime le 2025-01-01T00:00:00Z", "result eq 'success'",
    f"initiatedBy/user/id eq '{OID}'", f"initiatedBy/app/appId eq '{APP}'", f"targetResources/any(t:t/id eq '{OID}')",
    "targetResources/any(t:t/displayName eq 'Ann')", "loggedByService eq 'Invited Users'", "correlationId eq 'x'",
    "category eq 'A' or category eq 'B'", "not(category eq 'A')", "activityDateTime ne 2024-01-01T00:00:00Z", "category eq 1",
    " and ".join(["category eq 'UserManagement'"] * 30),
]
SEARCHES = [
    '"displayName:wa"', '  "MAIL:anna@" ', '"displayName:anna lee"', '"displayName:a" OR "mail:b" and "surname:c"',
    '"displayName:sales team" OR "DESCRIPTION:eu"', '"mail:sales@"', '"mailNickname:x"', '"surname:x"', "displayName:x",
    '"displayName:"', '"displayName', '""', '"userPrincipalName:ann_example.com#EXT#"', '"givenName:\u00e9lodie"',
    '"displayName:' + " ".join(["w"] * 40) + '"', " AND ".join(['"displayName:a"'] * 30), " OR ".join(['"mail:b"'] * 30),
]
QUERIES = [
    "$select=id,displayName&$top=2", "$count=true&$select=id", "$expand=memberOf&$count=true",
    "$expand=memberOf,sponsors&$select=id,displayName", "$orderby=displayName&$top=2&$select=displayName",
    "$orderby=createdDateTime%20desc", "$orderby=displayName%20up", "$orderby=displayName,mail", "$orderby=nope",
    "$filter=userType%20eq%20%27Guest%27&$select=id,otherMails", "$filter=otherMails%2Fany%28x%3Ax%20eq%20%27a%40b.com%27%29",
    "$filter=otherMails/any(x:x eq 'a@b.com')", "$search=%22displayName:an%22&$count=true", "$top=999&$select=id", "$top=0",
    "$top=1000", "$top=-1", "$top=abc", "$skip=2", "$skiptoken=abc%3D%3D", "$count=maybe", "$select=nonsense", "$foo=bar",
    "filter=userType eq 'Guest'", "$FILTER=userType eq 'Guest'", "$top=1&$top=2", "$filter=%E0%A4%A", "$filter=%zz", "%",
    "$select=id&&&$top=3", "$expand=members&$search=%22displayName:team%22", "$select=a+b", "api-version=1.6&$top=5", "",
]
PATHS = [
    "ann_example.com%23EXT%23%40contoso.onmicrosoft.com", "ann_example.com#EXT#@contoso.onmicrosoft.com", OID, "%7B" + OID + "%7D",
    "a+b%2Bc", "%", "%z", "%E0%A4%A", "%C3%A9l%C3%A9onore", "%00", "%FF%FE", "caf\u00e9", "%25%32%35", "O'Brien%27s",
]
EMAILS = [
    "alice@example.com", "a.b-c_d@sub.example.co.uk", "_x_@example.org", "o'brien@example.ie", "A@B.CD", " padded@example.com ",
    "no-at-sign", "two@@example.com", "a@b@c.com", ".lead@example.com", "trail.@example.com", "dou..ble@example.com",
    "x@localhost", "x@-bad.com", "x@bad-.com", "x@exa_mple.com", "\u00e9l\u00e8ve@example.fr", "a" * 65 + "@example.com",
    "b@" + ".".join(["a" * 63] * 4) + ".com", "ann_example.com#EXT#@contoso.onmicrosoft.com", "admin@contoso.onmicrosoft.com",
    "x!#^~@contoso.com", "@example.com", "user@", "", "a@b.c", "plus+tag@example.com",
]
TEMPLATE_HEAD = ("version:v1.0\nEmail address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,"
                 "Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]\n")
BULK = [
    TEMPLATE_HEAD + "Example: guest@example.com,https://myapp.contoso.com,true,Welcome\nann@example.com,https://myapps.microsoft.com,,Hi\n",
    TEMPLATE_HEAD + "bob@example.org,https://x.example,false,\ncy@example.net,https://x.example,TRUE,\"Hello, world\"\n",
    "\ufeffinviteRedirectURL,inviteeEmail\r\nhttps://x.example,cy@example.net\r\n",
    "inviteeEmail,inviteRedirectURL,customizedMessageBody\r\na@b.example,https://x.example,\r\n\r\nc@b.example,https://x.example,\"two\r\nlines\"\r\nbad,https://x.example,\r\n",
    "version:v1.0\n", "email,url\na@b.com,https://x\n", "inviteeEmail,inviteRedirectURL\n", "inviteeEmail,inviteRedirectURL\n,\n",
    "inviteeEmail,inviteRedirectURL,sendEmail\na@b.com,javascript:alert(1),maybe\n", "inviteeEmail,inviteRedirectURL\n\"unterminated,x\n",
    "inviteeEmail,inviteRedirectURL\n" + "".join(f"g{i}@example.com,https://x.example\n" for i in range(12)),
    "inviteeEmail,inviteRedirectURL,customizedMessageBody\na@b.com,https://x.example," + "m" * 600 + "\n",
    "inviteeEmail;inviteRedirectURL\na@b.com;https://x.example\n", "\r\r\n\n,,,\n[inviteeEmail],[inviteRedirectURL]\na@b.com,https://x\n",
]

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def claims(**override):
    base = {"aud": "https://graph.microsoft.com", "iss": f"https://guestlist.test/{TENANT}/v2.0", "iat": 1_789_999_000,
            "nbf": 1_789_999_000, "exp": 1_790_002_600, "appid": APP, "azp": APP, "idtyp": "app", "oid": OID, "tid": TENANT,
            "roles": ["User.Invite.All", "User.ReadWrite.All"], "uti": "AAAAAAAAAAAAAAAAAAAAAA", "ver": "1.0"}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}

SIGNED_CLAIMS = [  # first byte odd: the fuzz target signs these with its own key
    claims(), claims(idtyp="user", scp="User.Read User.Invite.All", upn="admin@contoso.onmicrosoft.com", roles=None),
    claims(idtyp=None, scp="User.Read"), claims(aud=["x", "00000003-0000-0000-c000-000000000000"]), claims(aud=5),
    claims(exp=1_000), claims(nbf=2_000_000_000), claims(exp=9_223_372_036_854_775_807), claims(nbf=-9_223_372_036_854_775_808),
    claims(exp=None), claims(tid="{" + TENANT + "}"), claims(tid="not-a-guid"), claims(iss="https://evil.test/x/v2.0"),
    claims(appid=None), claims(oid=7), claims(roles="User.Read.All"), claims(roles=["Nope.All", 1]),
]
RAW_TOKENS = [  # first byte even: the rest is a bearer token as received
    "", "   ", "not.a.token", "a.b", "a.b.c.d", b64(json.dumps({"alg": "none"}).encode()) + "." + b64(json.dumps(claims()).encode()) + ".",
    b64(json.dumps({"alg": "HS256", "kid": "x"}).encode()) + "." + b64(json.dumps(claims()).encode()) + ".c2ln",
    b64(json.dumps({"alg": "RS256", "kid": "unknown"}).encode()) + "." + b64(json.dumps(claims()).encode()) + ".c2ln",
    b64(b"{not json") + ".e30.", "eyJ" * 50, "Bearer " + b64(b'{"alg":"RS256"}') + ".e30.AA",
]

def write(target, items):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for item in items:
        data = item if isinstance(item, bytes) else item.encode()
        with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)

write("user_filter", USER_FILTERS)
write("group_filter", GROUP_FILTERS)
write("audit_filter", AUDIT_FILTERS)
write("search", SEARCHES)
write("query_string", QUERIES + ["$filter=" + f.replace(" ", "%20") for f in USER_FILTERS[:8]] + ["$search=" + s for s in SEARCHES[:5]])
write("percent_decoding", PATHS + QUERIES[:10])
write("email_upn", EMAILS)
write("bulk_csv", BULK + [b"\xff\xfe not utf-8", b"inviteeEmail,inviteRedirectURL\n\xc3(,x\n"])
write("bearer_token", [b"\x01" + json.dumps(c).encode() for c in SIGNED_CLAIMS] + [b"\x01not json", b"\x01"]
      + [b"\x00" + t.encode() for t in RAW_TOKENS])
