"""Subject rights: find, export and erase one person's data in every store, replica and backup."""
