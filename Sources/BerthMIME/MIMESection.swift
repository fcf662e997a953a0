import BerthIMAP

extension MIMEMessage {
    /// FETCH BODY[section]<partial> (RFC 3501 §6.4.5): the section's octets of the CRLF
    /// form, then the partial's range of them. Unknown parts, and HEADER/TEXT of a part
    /// that is not message/rfc822, give empty data, as Dovecot does.
    public func section(_ section: IMAPSection, partial: IMAPPartial? = nil) -> [UInt8] {
        let data = self.section(section)
        guard let partial else { return data }
        return Self.apply(partial, to: data)
    }

    /// `<origin.count>`: the octets from `origin`, at most `count` of them; empty when
    /// `origin` is past the end.
    public static func apply(_ partial: IMAPPartial, to data: [UInt8]) -> [UInt8] {
        let start = min(Int(partial.offset), data.count)
        let end = min(start + Int(partial.length), data.count)
        return Array(data[start..<end])
    }

    /// The section's octets, without a partial.
    public func section(_ section: IMAPSection) -> [UInt8] {
        guard !section.part.isEmpty else {
            switch section.text {
            case nil: return bytes
            case .mime: return []  // The grammar allows MIME only after a part number.
            case let text?: return messageText(root, text)
            }
        }
        guard let entity = resolve(section.part) else { return [] }
        switch section.text {
        case nil:
            return Array(bytes[entity.bodyRange])
        case .mime:
            return Array(bytes[entity.header.range])
        case let text?:
            // HEADER, TEXT, HEADER.FIELDS after a part number: of its encapsulated message.
            guard case .message(let inner) = entity.content else { return [] }
            return messageText(inner, text)
        }
    }

    /// The byte range a section refers to when it is one contiguous run (everything but
    /// HEADER.FIELDS and HEADER.FIELDS.NOT); nil otherwise or when it is empty.
    public func sectionRange(_ section: IMAPSection) -> Range<Int>? {
        var entity = root
        if !section.part.isEmpty {
            guard let found = resolve(section.part) else { return nil }
            entity = found
            switch section.text {
            case nil: return entity.bodyRange
            case .mime: return entity.header.range
            default:
                guard case .message(let inner) = entity.content else { return nil }
                entity = inner
            }
        }
        switch section.text {
        case nil: return 0..<bytes.count
        case .header: return entity.header.range
        case .text: return entity.bodyRange
        case .mime, .headerFields, .headerFieldsNot: return nil
        }
    }

    /// The entity a part path names (RFC 3501 §6.4.5): numbers index the parts of a
    /// multipart; in a message/rfc822 part they index the encapsulated message's parts;
    /// part 1 of anything that is not a multipart is the thing itself, but only as the last
    /// number (Dovecot: BODY[1.1] of a single-part message is empty).
    public func resolve(_ path: [UInt32]) -> MIMEPart? {
        var entity = root
        for (position, number) in path.enumerated() {
            var container = entity
            if position > 0, case .message(let inner) = entity.content { container = inner }
            if case .multipart(let parts) = container.content {
                guard number >= 1, Int(number) <= parts.count else { return nil }
                entity = parts[Int(number) - 1]
            } else {
                // Only the last number may name a leaf itself; deeper numbers need a message.
                guard number == 1 else { return nil }
                if position < path.count - 1, case .message = container.content {} else if position < path.count - 1 {
                    return nil
                }
                entity = container
            }
        }
        return entity
    }

    /// HEADER, HEADER.FIELDS (.NOT) or TEXT of a message entity.
    func messageText(_ message: MIMEPart, _ text: IMAPSectionText) -> [UInt8] {
        switch text {
        case .header, .mime: return Array(bytes[message.header.range])
        case .text: return Array(bytes[message.bodyRange])
        case .headerFields(let names): return headerFields(message.header, names: names, matching: true)
        case .headerFieldsNot(let names): return headerFields(message.header, names: names, matching: false)
        }
    }

    /// The fields whose names are (or, with `matching` false, are not) in `names`, byte-exact
    /// with their folding and CRLF, then the blank line (RFC 3501 §6.4.5).
    func headerFields(_ header: MIMEHeader, names: [String], matching: Bool) -> [UInt8] {
        let wanted = Set(names.map { $0.lowercased() })
        var output: [UInt8] = []
        for field in header.fields where wanted.contains(field.lowercasedName) == matching {
            output += bytes[field.range]
            if output.last != Byte.lf { output += [Byte.cr, Byte.lf] }
        }
        output += [Byte.cr, Byte.lf]
        return output
    }
}
