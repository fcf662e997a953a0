/// The messages the Dovecot fixtures were captured from (Dovecot 2.3.19.1, Maildir, FETCH in a
/// private preauth `imap` process). Messages 1-3 have CRLF line ends, message 4 bare LF.
enum DovecotMessages {
    static let m1 = crlf(#"""
        Return-Path: <alice@example.com>
        Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
        From: Fred Foobar <foobar@Blurdybloop.example>
        Subject: =?ISO-8859-1?Q?caf=E9?= afternoon
        To: mooch@owatagu.siam.edu.example, "Doe, Jane" <jane@x.example> (work)
        Cc: undisclosed-recipients:;
        Message-Id: <B27397-0100000@Blurdybloop.example>
        MIME-Version: 1.0
        Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

        Hello Joe, do you think we can meet at 3:30 tomorrow?

        Second line.
        """# + "\n")

    static let m2 = crlf(#"""
        From: bob@example.org
        To: Team: a@example.org, Carl <c@example.org>;, dave@example.org
        Subject: report
        Date: Tue, 1 Apr 2025 10:00:00 +0000
        In-Reply-To: <x1@example.org>
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary="=_outer'(+)_,-./:=?"

        This is the preamble.
        --=_outer'(+)_,-./:=?
        Content-Type: multipart/alternative; boundary=inner

        --inner
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        Gr=C3=BC=C3=9Fe aus K=C3=B6ln
        second line
        --inner
        Content-Type: text/html; charset="utf-8"

        <p>Gr&uuml;&szlig;e</p>
        --inner--

        --=_outer'(+)_,-./:=?
        Content-Type: application/pdf; name="report.pdf"
        Content-Transfer-Encoding: base64
        Content-Disposition: attachment;
         filename="report.pdf"; size=12
        Content-ID: <part2@example.org>
        Content-Description: The report
        Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
        Content-Location: http://x.example/report.pdf

        JVBERi0xLjQKJcfs
        --=_outer'(+)_,-./:=?--
        epilogue
        """# + "\n")

    static let m3 = crlf(#"""
        From: "Carol" <carol@example.net>
        To: dan@example.net
        Subject: fwd
        Date: Wed, 2 Apr 2025 11:00:00 +0200
        Message-ID: <m3@example.net>
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary=b1

        --b1

        See attached.
        --b1
        Content-Type: message/rfc822
        Content-Disposition: inline

        From: Eve <eve@example.com>
        Sender: list@example.com
        Reply-To: replies@example.com
        To: frank@example.com
        Subject: inner
        Date: Thu, 3 Apr 2025 12:00:00 +0000
        Content-Type: multipart/alternative; boundary="b2"

        --b2
        Content-Type: text/plain

        plain
        --b2
        Content-Type: text/enriched

        <bold>rich</bold>
        --b2--
        --b1
        Content-Type: multipart/digest; boundary=d

        --d

        From: g@example.com
        Subject: digest one

        one
        --d
        Content-Type: text/plain

        not a message
        --d--
        --b1--
        """# + "\n")

    static let m4 = (#"""
        From: h@example.com
        Subject: =?UTF-8?B?w6lsw6h2ZQ==?= =?UTF-8?B?IHRlc3Q=?=
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary=zz

        --zz
        Content-Type: text/plain; charset=iso-8859-1

        abc
        --zz
        Content-Type: application/octet-stream;
         name*0*=utf-8''%E2%82%AC%20rates;
         name*1=".txt"
        Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC.txt
        Content-Language: en, de

        data
        more
        """# + "\n")

    static let all = [m1, m2, m3, m4]
}

/// `text` with every LF made CRLF.
func crlf(_ text: String) -> String { text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n") }
