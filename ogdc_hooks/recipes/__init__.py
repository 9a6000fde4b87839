"""Understanding recipes: the meta.yml model, safe loading, precise problems, rendering."""
