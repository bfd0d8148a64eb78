"""Write src/alignuniform/resources/sts-mini.tsv: sentence pairs with 0-5 similarity scores.

Every sentence was written for this project. Each group holds a sentence, a paraphrase of it,
a variant that changes a detail, and a sentence on the same topic saying something else; pairs
get scores in bands (paraphrase 4.2-5, variant 2.6-3.8, same topic 1.0-2.4, other group 0-0.8)
with a seeded jitter inside the band. Rerun to regenerate the file byte for byte.
"""

from __future__ import annotations

import random
from pathlib import Path

GROUPS = [
    (
        "A man is playing a guitar on the porch.",
        "A man plays the guitar outside on his porch.",
        "A woman is playing a violin on the porch.",
        "The porch was painted blue last summer.",
    ),
    (
        "The train to the coast leaves at eight.",
        "At eight o'clock the coastal train departs.",
        "The bus to the coast leaves at nine.",
        "Tickets for the coast are cheaper on weekdays.",
    ),
    (
        "A child is feeding ducks at the pond.",
        "A young kid gives bread to the ducks by the pond.",
        "A child is chasing ducks around the pond.",
        "The pond freezes over every January.",
    ),
    (
        "The recipe calls for two cups of flour.",
        "You need two cups of flour for this recipe.",
        "The recipe calls for two spoons of sugar.",
        "This recipe was handed down by my grandmother.",
    ),
    (
        "Heavy rain flooded the main road overnight.",
        "The main road was flooded by heavy rain during the night.",
        "Heavy snow closed the main road overnight.",
        "The council plans to widen the main road.",
    ),
    (
        "She finished the marathon in under four hours.",
        "She ran the whole marathon in less than four hours.",
        "She finished the half marathon in under two hours.",
        "The marathon route passes the old harbour.",
    ),
    (
        "The cat is sleeping on the windowsill.",
        "A cat naps on the sill of the window.",
        "The dog is sleeping on the windowsill.",
        "The window needs a new latch.",
    ),
    (
        "Two teams are playing football in the rain.",
        "A football match is being played in the rain by two teams.",
        "Two teams are playing basketball indoors.",
        "The football club sold out its season tickets.",
    ),
    (
        "The museum opens at ten on Sundays.",
        "On Sundays the museum opens its doors at ten.",
        "The library opens at ten on Sundays.",
        "The museum bought a painting by a local artist.",
    ),
    (
        "A woman is slicing tomatoes in the kitchen.",
        "In the kitchen a woman cuts tomatoes into slices.",
        "A woman is peeling potatoes in the kitchen.",
        "The kitchen has a large window facing the garden.",
    ),
    (
        "The company reported higher profits this quarter.",
        "Profits at the company rose this quarter.",
        "The company reported higher costs this quarter.",
        "The company moved its offices to the city centre.",
    ),
    (
        "A boy is riding a bicycle down the hill.",
        "A boy rides his bike down a hill.",
        "A boy is pushing a bicycle up the hill.",
        "The hill is steep and covered in gravel.",
    ),
    (
        "The flight was delayed by two hours.",
        "The plane took off two hours late.",
        "The flight was cancelled because of fog.",
        "The airport added a new terminal this year.",
    ),
    (
        "He is reading a newspaper on the bench.",
        "A man sits on the bench reading the paper.",
        "He is reading a novel on the train.",
        "The bench was donated in memory of a teacher.",
    ),
    (
        "The doctor told him to drink more water.",
        "He was advised by his doctor to drink more water.",
        "The doctor told him to eat less salt.",
        "The doctor's office is closed on Fridays.",
    ),
    (
        "A dog is catching a frisbee in the park.",
        "In the park a dog catches a flying disc.",
        "A dog is fetching a stick from the lake.",
        "The park is busy with families on weekends.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "We rescheduled the meeting for Thursday afternoon.",
        "The meeting has been moved to Friday morning.",
        "The meeting room has a broken projector.",
    ),
    (
        "Prices of fresh vegetables rose sharply in March.",
        "Fresh vegetables became much more expensive in March.",
        "Prices of fresh fruit fell slightly in March.",
        "Farmers expect a good harvest this autumn.",
    ),
    (
        "A man is climbing a steep rock face.",
        "A climber makes his way up a steep cliff.",
        "A man is abseiling down a steep rock face.",
        "The rock face is popular with tourists.",
    ),
    (
        "The students handed in their essays on time.",
        "All the students submitted their essays by the deadline.",
        "The students handed in their essays a week late.",
        "The essay topic was the history of the town.",
    ),
    (
        "A girl is painting a picture of the sea.",
        "A young girl paints the sea.",
        "A girl is taking a photograph of the sea.",
        "The sea was calm all afternoon.",
    ),
    (
        "The bakery sells fresh bread every morning.",
        "Every morning the bakery has freshly baked bread for sale.",
        "The bakery sells cakes every afternoon.",
        "The bakery has been in the same family for decades.",
    ),
    (
        "The river burst its banks after the storm.",
        "After the storm the river overflowed its banks.",
        "The river dried up after the long summer.",
        "Fishing in the river requires a permit.",
    ),
    (
        "Two men are carrying a sofa up the stairs.",
        "A couch is being carried upstairs by two men.",
        "Two men are carrying a table down the stairs.",
        "The stairs in the old building creak loudly.",
    ),
    (
        "The new phone has a longer battery life.",
        "The battery of the new phone lasts longer.",
        "The new phone has a larger screen.",
        "Phone sales slowed down during the winter.",
    ),
    (
        "A woman is jogging along the beach at sunrise.",
        "At dawn a woman runs along the beach.",
        "A woman is walking her dog along the beach at sunset.",
        "The beach is cleaned every morning by volunteers.",
    ),
    (
        "The government announced a cut in fuel taxes.",
        "A reduction in fuel taxes was announced by the government.",
        "The government announced a rise in tobacco taxes.",
        "The government will hold an election next spring.",
    ),
    (
        "The orchestra played a symphony by Brahms.",
        "A Brahms symphony was performed by the orchestra.",
        "The orchestra played a concerto by Mozart.",
        "The orchestra is looking for a new conductor.",
    ),
    (
        "A chef is frying onions in a large pan.",
        "In a big pan a cook fries some onions.",
        "A chef is boiling pasta in a large pot.",
        "The chef trained in restaurants across Italy.",
    ),
    (
        "The children built a snowman in the garden.",
        "In the garden the kids made a snowman.",
        "The children built a sandcastle on the beach.",
        "The garden was covered in snow for a week.",
    ),
    (
        "The bridge will be closed for repairs next week.",
        "Next week the bridge closes so it can be repaired.",
        "The tunnel will be closed for repairs next month.",
        "The bridge was built more than a century ago.",
    ),
    (
        "A man is shaving in front of a mirror.",
        "A man shaves his face in the mirror.",
        "A man is brushing his teeth in front of a mirror.",
        "The mirror in the hall is cracked.",
    ),
    (
        "The team won the championship for the third year in a row.",
        "For a third straight year the team took the championship.",
        "The team lost the championship final in extra time.",
        "The team's stadium holds forty thousand people.",
    ),
    (
        "She is learning to speak Japanese.",
        "She is studying the Japanese language.",
        "She is learning to cook Japanese food.",
        "Japan has four main islands.",
    ),
    (
        "A cyclist was injured in a collision with a van.",
        "A van hit a cyclist, who was hurt.",
        "A pedestrian was injured in a collision with a bus.",
        "Cycling to work has become more popular in the city.",
    ),
    (
        "The printer in the office is out of paper.",
        "There is no paper left in the office printer.",
        "The printer in the office is out of ink.",
        "The office will be repainted in the spring.",
    ),
    (
        "A man is mowing the lawn behind the house.",
        "Behind the house a man cuts the grass.",
        "A man is watering the flowers behind the house.",
        "The house has a small shed at the back.",
    ),
    (
        "The scientists discovered a new species of frog.",
        "A previously unknown frog species was found by scientists.",
        "The scientists discovered a new species of beetle.",
        "The scientists work at a university in the north.",
    ),
    (
        "The shop is offering a discount on winter coats.",
        "Winter coats are on sale at the shop.",
        "The shop is offering a discount on summer shoes.",
        "The shop closes early on public holidays.",
    ),
    (
        "A woman is knitting a scarf by the fire.",
        "By the fireplace a woman knits a scarf.",
        "A woman is sewing a dress by the window.",
        "The fire was lit to warm the cold room.",
    ),
    (
        "The volcano erupted for the first time in fifty years.",
        "After fifty quiet years the volcano erupted.",
        "The volcano showed signs of activity for the first time in years.",
        "Tourists often hike to the edge of the volcano.",
    ),
    (
        "A horse is running across the field.",
        "A horse gallops through the field.",
        "A horse is grazing in the field.",
        "The field is surrounded by a stone wall.",
    ),
    (
        "The hospital hired fifty new nurses this year.",
        "This year the hospital took on fifty more nurses.",
        "The hospital hired ten new surgeons this year.",
        "The hospital car park is always full.",
    ),
    (
        "He forgot his umbrella and got soaked.",
        "He left his umbrella behind and got wet through.",
        "He forgot his keys and was locked out.",
        "Umbrellas are sold at the station kiosk.",
    ),
    (
        "A band is playing on a stage in the square.",
        "In the square a band performs on a stage.",
        "A choir is singing on a stage in the church.",
        "The square is paved with old cobblestones.",
    ),
    (
        "The software update fixed the login problem.",
        "The login bug was fixed by the software update.",
        "The software update introduced a new login problem.",
        "The software is used by many small businesses.",
    ),
    (
        "A man is fishing from a small boat.",
        "A man in a little boat is fishing.",
        "A man is rowing a small boat across the lake.",
        "The boat was repaired over the winter.",
    ),
    (
        "The price of the house dropped by ten percent.",
        "The house is now ten percent cheaper.",
        "The price of the house rose by ten percent.",
        "The house has three bedrooms and a garden.",
    ),
    (
        "A baby is laughing at a puppy.",
        "A puppy makes a baby laugh.",
        "A baby is crying at a loud noise.",
        "The puppy was adopted from a shelter.",
    ),
    (
        "The road to the village is blocked by a fallen tree.",
        "A fallen tree is blocking the village road.",
        "The road to the village is blocked by a broken-down lorry.",
        "The village has a market every Saturday.",
    ),
    (
        "Two women are talking over coffee.",
        "Two women chat while drinking coffee.",
        "Two women are arguing over a parking space.",
        "The coffee shop serves breakfast until noon.",
    ),
    (
        "The teacher explained the experiment to the class.",
        "The class had the experiment explained by their teacher.",
        "The teacher cancelled the experiment because of the fire alarm.",
        "The classroom has new desks this term.",
    ),
    (
        "A plane is landing on the runway.",
        "An aircraft touches down on the runway.",
        "A plane is taxiing towards the gate.",
        "The runway was lengthened to take larger jets.",
    ),
    (
        "The writer published her first novel at the age of sixty.",
        "At sixty the writer brought out her first novel.",
        "The writer published her tenth novel at the age of sixty.",
        "The novel is set in a fishing village.",
    ),
    (
        "A squirrel is eating a nut on the fence.",
        "On the fence a squirrel eats a nut.",
        "A bird is eating seeds on the fence.",
        "The fence between the gardens is falling down.",
    ),
    (
        "The power went out across the whole town.",
        "The entire town lost electricity.",
        "The water supply was cut off across part of the town.",
        "The town has a new solar farm.",
    ),
    (
        "A man is repairing the roof of the barn.",
        "A man fixes the barn roof.",
        "A man is painting the doors of the barn.",
        "The barn is used to store hay.",
    ),
    (
        "The concert was sold out within an hour.",
        "All the concert tickets were gone within an hour.",
        "The concert was postponed for a month.",
        "The concert hall has excellent acoustics.",
    ),
    (
        "A woman is planting tomatoes in the greenhouse.",
        "In the greenhouse a woman plants tomatoes.",
        "A woman is picking strawberries in the field.",
        "The greenhouse stays warm even in winter.",
    ),
    (
        "The committee approved the plan for a new school.",
        "Plans for a new school were approved by the committee.",
        "The committee rejected the plan for a new car park.",
        "The school has more pupils than ever before.",
    ),
]

BANDS = {"paraphrase": (4.2, 5.0), "variant": (2.6, 3.8), "topic": (1.0, 2.4), "other": (0.0, 0.8)}

HEADER = """\
# sts-mini: original sentence pairs written for alignuniform (not STS-B), scores 0-5.
# Format: score<TAB>sentence1<TAB>sentence2, one pair per line; lines starting with # are comments.
# Generated by scripts/make_sts_mini.py. Real STS-B is supplied by the user.
score\tsentence1\tsentence2
"""


def pairs(seed: int = 0) -> list[tuple[float, str, str]]:
    rng = random.Random(seed)
    rows = []
    n = len(GROUPS)
    for k, (base, para, variant, topic) in enumerate(GROUPS):
        other = GROUPS[(k + 7) % n]
        for band, a, b in (
            ("paraphrase", base, para),
            ("variant", base, variant),
            ("variant", variant, para),
            ("topic", para, topic),
            ("other", topic, other[rng.randrange(4)]),
        ):
            low, high = BANDS[band]
            rows.append((round(rng.uniform(low, high), 1), a, b))
    rng.shuffle(rows)
    return rows


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "src/alignuniform/resources/sts-mini.tsv"
    body = "".join(f"{score:.1f}\t{a}\t{b}\n" for score, a, b in pairs())
    out.write_text(HEADER + body)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
