"""Information release (信息发布): a union's news and notices, reviewed by a second staff
member before members see them."""
