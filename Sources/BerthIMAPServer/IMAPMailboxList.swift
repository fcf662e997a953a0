import BerthCore
import BerthIMAP

/// LIST and LSUB (RFC 3501 §6.3.8, §6.3.9; RFC 5258 LIST-EXTENDED; RFC 6154 SPECIAL-USE;
/// RFC 3348 CHILDREN) over the account's folders, pure.
enum IMAPMailboxList {
    static let delimiter: Character = "/"

    /// RFC 3501 §6.3.8: `*` matches anything, `%` anything but the delimiter. INBOX is
    /// case-insensitive (§5.1).
    static func matches(_ pattern: String, _ name: String) -> Bool {
        var pattern = pattern
        if name.hasPrefix("INBOX"), pattern.prefix(5).uppercased() == "INBOX" { pattern = "INBOX" + pattern.dropFirst(5) }
        return match(Array(pattern.unicodeScalars)[...], Array(name.unicodeScalars)[...])
    }

    /// Wildcard matching in O(pattern × name) steps, whatever the pattern: the set of
    /// pattern positions reachable after each character of the name (a backtracking
    /// matcher takes exponential time on patterns like `*a*a*a*a*b`).
    private static func match(_ pattern: ArraySlice<Unicode.Scalar>, _ name: ArraySlice<Unicode.Scalar>) -> Bool {
        let pattern = Array(pattern)
        var current = [Bool](repeating: false, count: pattern.count + 1)
        var next = current
        current[0] = true
        closeOverWildcards(&current, pattern)
        for character in name {
            for index in next.indices { next[index] = false }
            var any = false
            for index in pattern.indices where current[index] {
                switch pattern[index] {
                case "*":
                    next[index] = true
                    any = true
                case "%":
                    if character != "/" {
                        next[index] = true
                        any = true
                    }
                case let literal:
                    if literal == character {
                        next[index + 1] = true
                        any = true
                    }
                }
            }
            guard any else { return false }
            closeOverWildcards(&next, pattern)
            swap(&current, &next)
        }
        return current[pattern.count]
    }

    /// A wildcard may match nothing: a position before one reaches the position after it.
    private static func closeOverWildcards(_ reachable: inout [Bool], _ pattern: [Unicode.Scalar]) {
        for index in pattern.indices where reachable[index] && (pattern[index] == "*" || pattern[index] == "%") {
            reachable[index + 1] = true
        }
    }

    struct Entry: Sendable {
        var item: IMAPListItem
        /// nil for a parent that exists only as part of its children's names.
        var mailbox: MailboxInfo?
    }

    /// The LIST answer, in the store's order (INBOX first), implied parents placed before
    /// their first child.
    ///
    /// With RECURSIVEMATCH (RFC 5258 §3), a name matching the pattern that fails the
    /// selection options but has a descendant passing them is listed too, with
    /// `CHILDINFO` naming the options (§3.5); if it is not a folder, as `\NonExistent`.
    static func list(_ mailboxes: [MailboxInfo], _ command: IMAPListCommand) -> [Entry] {
        let names = Set(mailboxes.map(\.name))
        let patterns = command.patterns.map { command.reference.name + $0 }
        let subscribedOnly = command.selectOptions.contains(.subscribed)
        let specialUseOnly = command.selectOptions.contains(.specialUse)
        let filtered = subscribedOnly || specialUseOnly
        let showSubscribed = subscribedOnly || command.returnOptions.contains(.subscribed)
        func selected(_ mailbox: MailboxInfo) -> Bool {
            (!subscribedOnly || mailbox.subscribed) && (!specialUseOnly || mailbox.specialUse != nil)
        }
        // RFC 5258 §3.5: `list-select-base-opt-quoted`, in the order the grammar lists them.
        var childInfo: [String] = []
        if subscribedOnly { childInfo.append("SUBSCRIBED") }
        if specialUseOnly { childInfo.append("SPECIAL-USE") }
        // Names with a descendant passing the selection options (any depth, pattern or not).
        var matchingDescendants = Set<String>()
        if command.selectOptions.contains(.recursiveMatch) {
            for mailbox in mailboxes where selected(mailbox) { matchingDescendants.formUnion(ancestors(of: mailbox.name)) }
        }
        var entries: [Entry] = []
        var implied = Set<String>()
        for mailbox in mailboxes {
            // Parents missing from the store (a/b without a), once each (RFC 3501 §6.3.8 `\Noselect`).
            for parent in ancestors(of: mailbox.name) {
                guard !names.contains(parent), !implied.contains(parent),
                      patterns.contains(where: { matches($0, parent) })
                else { continue }
                if !filtered {
                    implied.insert(parent)
                    entries.append(Entry(
                        item: IMAPListItem(attributes: ["\\Noselect", "\\HasChildren"], delimiter: delimiter,
                                           mailbox: IMAPMailboxName(parent)),
                        mailbox: nil))
                } else if matchingDescendants.contains(parent) {
                    implied.insert(parent)
                    entries.append(Entry(
                        item: IMAPListItem(attributes: ["\\NonExistent", "\\HasChildren"], delimiter: delimiter,
                                           mailbox: IMAPMailboxName(parent), childInfo: childInfo),
                        mailbox: nil))
                }
            }
            let withDescendants = matchingDescendants.contains(mailbox.name)
            guard selected(mailbox) || withDescendants, patterns.contains(where: { matches($0, mailbox.name) })
            else { continue }
            var attributes: [String] = []
            attributes.append(hasChildren(mailbox.name, names) ? "\\HasChildren" : "\\HasNoChildren")
            if let use = mailbox.specialUse { attributes.append(use.rawValue) }
            if showSubscribed && mailbox.subscribed { attributes.append("\\Subscribed") }
            entries.append(Entry(
                item: IMAPListItem(attributes: attributes, delimiter: delimiter, mailbox: IMAPMailboxName(mailbox.name),
                                   childInfo: withDescendants ? childInfo : []),
                mailbox: mailbox))
        }
        return entries
    }

    /// LSUB: the subscribed folders matching the pattern, and (RFC 3501 §6.3.9) a parent
    /// that matches it where its subscribed child does not (`foo` for `foo/bar` and `%`),
    /// flagged `\Noselect` when it is not subscribed itself.
    static func lsub(_ mailboxes: [MailboxInfo], reference: String, pattern: String) -> [IMAPListItem] {
        let full = reference + pattern
        let subscribed = Set(mailboxes.filter(\.subscribed).map(\.name))
        var items: [IMAPListItem] = []
        var parents = Set<String>()
        for mailbox in mailboxes where mailbox.subscribed {
            if matches(full, mailbox.name) {
                items.append(IMAPListItem(attributes: [], delimiter: delimiter, mailbox: IMAPMailboxName(mailbox.name)))
                continue
            }
            for parent in ancestors(of: mailbox.name)
            where !subscribed.contains(parent) && !parents.contains(parent) && matches(full, parent) {
                parents.insert(parent)
                items.append(IMAPListItem(attributes: ["\\Noselect"], delimiter: delimiter, mailbox: IMAPMailboxName(parent)))
            }
        }
        return items
    }

    /// `a` and `a/b` for `a/b/c`, outermost first.
    static func ancestors(of name: String) -> [String] {
        var result: [String] = []
        var parent = ""
        for part in name.split(separator: delimiter).dropLast() {
            parent += (parent.isEmpty ? "" : String(delimiter)) + part
            result.append(parent)
        }
        return result
    }

    static func hasChildren(_ name: String, _ names: Set<String>) -> Bool {
        let prefix = name + "/"
        return names.contains { $0.hasPrefix(prefix) }
    }

    /// The store's spelling of a client's name: INBOX in any case is INBOX (RFC 3501 §5.1),
    /// and a trailing delimiter is dropped (§6.3.3).
    static func canonical(_ name: IMAPMailboxName) -> String {
        var text = name.name
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        if text.uppercased() == "INBOX" { return "INBOX" }
        if text.uppercased().hasPrefix("INBOX/") { return "INBOX" + text.dropFirst(5) }
        return text
    }

    /// STATUS values (RFC 3501 §6.3.10 and extensions) of a folder.
    static func statusValues(_ status: MailboxStatus, _ attributes: [IMAPStatusAttribute]) -> [IMAPStatusValue] {
        attributes.map { attribute in
            let value: UInt64
            switch attribute {
            case .messages: value = UInt64(status.messages)
            case .recent: value = UInt64(status.recent)
            case .uidNext: value = UInt64(status.mailbox.uidNext)
            case .uidValidity: value = UInt64(status.mailbox.uidValidity)
            case .unseen: value = UInt64(status.unseen)
            case .highestModSeq: value = status.mailbox.highestModSeq
            case .size: value = UInt64(status.size)
            case .deleted: value = UInt64(status.deleted)
            }
            return IMAPStatusValue(attribute, value)
        }
    }
}
